// How an app uses the client; type-checked by the test command (`tsc --noEmit`), so a schema
// change that breaks this usage breaks the build. Run it against a local server with
//   npx tsc -p clients/ts --outDir /tmp/pawql-ts --noEmit false && node /tmp/pawql-ts/example.js
import { pawqlClient, PawqlRequestError } from "./client";
import type { ScanStatus } from "./generated";

export async function showOneCat(endpoint: string, apiKey?: string): Promise<string | null> {
  const client = pawqlClient({ endpoint, apiKey });
  const { randomImage } = await client.RandomCat({ label: "cat" });
  // randomImage is `{ id, url, weight, … } | null`: no cats uploaded yet gives null.
  return randomImage ? `${randomImage.url} (weight ${randomImage.weight.toFixed(2)})` : null;
}

export async function uploadAndScan(endpoint: string, photo: Blob, apiKey?: string): Promise<boolean | null> {
  const client = pawqlClient({ endpoint, apiKey });
  try {
    const { upload } = await client.UploadImage({ image: photo, label: "cat", weight: 0.7 });
    const { requestScan } = await client.RequestScan({ id: upload.id });
    // Where subscriptions are out of reach, ask every second until the scan is final (it may
    // be already: the same bytes are scanned once).
    for (let tries = 0; tries < 60; tries++) {
      const { scanResult } = await client.ScanResult({ scanId: requestScan.id });
      const status: ScanStatus | undefined = scanResult?.status;
      if (status === "SUCCEEDED") return scanResult?.isCat ?? null;
      if (status === "FAILED") return null;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    return null;
  } catch (error) {
    if (error instanceof PawqlRequestError && error.codes.includes("UNAUTHENTICATED")) {
      throw new Error("this server needs an API key for uploads", { cause: error });
    }
    throw error;
  }
}
