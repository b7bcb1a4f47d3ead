// The pet viewer in a real browser (Debian's chromium, driven by playwright-core), on a
// phone-sized screen: load, upload a photo, see it, scan it, see the verdict arrive, draw a
// random pet. Run by tests/api/viewer.rs against a server it started:
//   node tests/browser/viewer.mjs <base-url> <photo> <screenshot.png> [page query, e.g. ?transport=events]
// Prints one JSON line with what it saw; exits non-zero with the reason otherwise.
import { chromium } from "playwright-core";

const [base, photo, screenshot, query = ""] = process.argv.slice(2);
if (!base || !photo || !screenshot) {
  console.error("usage: node viewer.mjs <base-url> <photo> <screenshot.png>");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu"],
});
const seen = {};
try {
  const page = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.setDefaultTimeout(30_000);

  await page.goto(base + "/" + query);
  await page.waitForFunction(() => document.getElementById("label").options.length > 0);
  seen.labels = await page.$$eval("#label option", (os) => os.map((o) => o.value));
  // The first pick is asked for once the labels are in: wait for its answer, not just the labels.
  await page.waitForFunction(() => document.getElementById("random-note").textContent.trim() !== "");
  seen.emptyNote = await page.textContent("#random-note");

  await page.setInputFiles("#file", photo);
  await page.selectOption("#upload-label", "cat");
  await page.fill("#weight", "0.8");
  await page.click("#upload-button");
  await page.waitForSelector("#uploaded:not([hidden])");
  await page.waitForFunction(() => document.getElementById("uploaded-img").naturalWidth > 0);
  seen.uploadedCaption = await page.textContent("#uploaded-caption");

  await page.click("#scan-button");
  await page.waitForFunction(() => /cat|failed/i.test(document.getElementById("verdict").textContent));
  seen.verdict = await page.textContent("#verdict");
  seen.scanStatus = await page.textContent("#scan-status");
  seen.verdictVia = await page.getAttribute("#verdict", "data-via");

  await page.click("#another");
  await page.waitForSelector("#pet:not([hidden])");
  await page.waitForFunction(() => document.getElementById("pet-img").naturalWidth > 0);
  seen.randomCaption = await page.textContent("#pet-caption");

  await page.screenshot({ path: screenshot, fullPage: true });
  seen.pageErrors = pageErrors;
  console.log(JSON.stringify(seen));
} catch (error) {
  console.error(`viewer test failed: ${error.message}\nseen so far: ${JSON.stringify(seen)}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
