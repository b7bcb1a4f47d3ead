// pawql's typed TypeScript client: the SDK `graphql-codegen` generates from schema.graphql
// and playground/*.graphql (src/generated.ts, not committed: `npm run codegen`), over fetch.
// Works in browsers and Node 18+. Uploads (File/Blob variables) go as GraphQL multipart
// requests; everything else as JSON.

import { getSdk, type Requester, type Sdk } from "./generated";

/** A GraphQL error as pawql sends it: `extensions.code` says what to do about it. */
export interface PawqlError {
  message: string;
  extensions?: { code?: string };
}

/** Thrown when the server answers with errors (or not with GraphQL at all). */
export class PawqlRequestError extends Error {
  constructor(
    readonly status: number,
    readonly errors: PawqlError[],
  ) {
    super(errors.map((e) => `${e.extensions?.code ?? "ERROR"}: ${e.message}`).join("; "));
  }

  /** The codes of all errors, e.g. ["UNAUTHENTICATED"]. */
  get codes(): string[] {
    return this.errors.map((e) => e.extensions?.code ?? "ERROR");
  }
}

export interface ClientOptions {
  /** e.g. "http://127.0.0.1:8080/graphql" or the API Gateway URL + "/graphql". */
  endpoint: string;
  /** Sent as `x-api-key`; needed for mutations when the server has keys. */
  apiKey?: string;
  fetch?: typeof fetch;
}

/** A typed pawql client: `client.RandomCat({ label: "cat" })`, `client.Upload({ image })`, … */
export function pawqlClient(options: ClientOptions): Sdk {
  return getSdk(requester(options));
}

function requester({ endpoint, apiKey, fetch: doFetch = fetch }: ClientOptions): Requester {
  return async <R, V>(query: string, variables?: V): Promise<R> => {
    const headers: Record<string, string> = { accept: "application/json" };
    if (apiKey) headers["x-api-key"] = apiKey;
    const files = filesIn(variables ?? {});
    let body: string | FormData;
    if (files.length === 0) {
      headers["content-type"] = "application/json";
      body = JSON.stringify({ query, variables });
    } else {
      // https://github.com/jaydenseric/graphql-multipart-request-spec
      const form = new FormData();
      const nulled = JSON.parse(JSON.stringify(variables, (_k, v) => (v instanceof Blob ? null : v)));
      form.append("operations", JSON.stringify({ query, variables: nulled }));
      form.append("map", JSON.stringify(Object.fromEntries(files.map(([path], i) => [String(i), [path]]))));
      files.forEach(([, file], i) => form.append(String(i), file));
      body = form;
    }
    const response = await doFetch(endpoint, { method: "POST", headers, body });
    const text = await response.text();
    let reply: { data?: R; errors?: PawqlError[] };
    try {
      reply = JSON.parse(text);
    } catch {
      throw new PawqlRequestError(response.status, [{ message: text.slice(0, 200) }]);
    }
    if (reply.errors?.length || reply.data == null) {
      throw new PawqlRequestError(response.status, reply.errors ?? [{ message: "no data" }]);
    }
    return reply.data;
  };
}

/** Every File/Blob among the variables, with its path as the multipart spec names it. */
function filesIn(value: unknown, path = "variables"): [string, Blob][] {
  if (value instanceof Blob) return [[path, value]];
  if (value && typeof value === "object") {
    return Object.entries(value).flatMap(([key, inner]) => filesIn(inner, `${path}.${key}`));
  }
  return [];
}
