// GraphiQL (GET /graphql) in a real browser with no network: Debian's chromium, every host but
// 127.0.0.1 unresolvable, and any request leaving loopback recorded. The editor must render
// from the server's own assets and load the schema by introspection (the docs explorer lists
// Query's fields, the result pane shows no error at first load, autocompletion offers a
// field), every playground tab must be there, a query must run, a subscription must stream to
// its final event, and the upload bar must upload a file.
// Run by tests/api/graphiql.rs:
//   node tests/browser/graphiql.mjs <base-url> <photo> <scan id> <screenshot.png>
// Prints one JSON line with what it saw; exits non-zero with the reason otherwise.
import { chromium } from "playwright-core";

const [base, photo, scanId, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"],
});
const seen = { offsite: [], pageErrors: [] };
const result = (page) =>
  page.evaluate(() => document.querySelector(".result-window .CodeMirror")?.CodeMirror.getValue() ?? "");
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (e) => seen.pageErrors.push(String(e)));
  page.on("request", (r) => {
    const host = new URL(r.url()).hostname;
    if (host !== "127.0.0.1" && !r.url().startsWith("data:")) seen.offsite.push(r.url());
  });
  page.setDefaultTimeout(30_000);

  await page.goto(base + "/graphql");
  await page.waitForSelector(".graphiql-container .CodeMirror");
  seen.tabs = await page.$$eval(".graphiql-tab", (tabs) => tabs.map((t) => t.textContent.trim()));

  // GraphiQL introspects the schema as it opens; had that failed, the docs explorer would show
  // the error, and so would the result pane.
  const docs = page.locator('.graphiql-sidebar button[aria-label$="Documentation Explorer"]');
  if ((await docs.getAttribute("aria-label")).startsWith("Show")) await docs.click();
  await page.waitForSelector(".graphiql-doc-explorer a.graphiql-doc-explorer-type-name, .graphiql-doc-explorer-error");
  seen.docsError = await page.$$eval(".graphiql-doc-explorer-error", (e) => e.map((x) => x.textContent).join("") || null);
  seen.firstResult = await result(page);
  if (seen.docsError) throw new Error(`the schema did not load: ${seen.docsError}`);
  await page.click('.graphiql-doc-explorer a.graphiql-doc-explorer-type-name:text-is("Query")');
  await page.waitForSelector(".graphiql-doc-explorer-field-name");
  seen.queryFields = await page.$$eval(".graphiql-doc-explorer-field-name", (f) => f.map((x) => x.textContent.trim()));

  const open = async (name) => {
    await page.click(`.graphiql-tab:has-text("${name}") .graphiql-tab-button`);
    await page.waitForFunction(
      (n) => document.querySelector(".graphiql-query-editor .CodeMirror")?.CodeMirror.getValue().includes(n),
      name,
    );
    // GraphiQL takes the new tab's document a moment after the editor shows it; a run
    // started sooner is dropped.
    await page.waitForTimeout(300);
  };

  await open("Labels");
  await page.click(".graphiql-execute-button");
  await page.waitForFunction(() =>
    document.querySelector(".result-window .CodeMirror")?.CodeMirror.getValue().includes('"labels"'));
  seen.query = JSON.parse(await result(page));

  await open("ScanUpdated");
  await page.evaluate((id) => {
    const editors = [...document.querySelectorAll(".graphiql-editor-tool .CodeMirror")];
    editors[0].CodeMirror.setValue(JSON.stringify({ scanId: id }));
  }, scanId);
  await page.click(".graphiql-execute-button");
  await page.waitForFunction(() =>
    /SUCCEEDED|FAILED|errors/.test(document.querySelector(".result-window .CodeMirror")?.CodeMirror.getValue() ?? ""));
  seen.subscription = JSON.parse(await result(page));

  await page.setInputFiles("#upload input[type=file]", photo);
  await page.click("#upload button");
  await page.waitForFunction(() => /"id"|errors/.test(document.getElementById("upload-result").textContent));
  seen.upload = JSON.parse(await page.textContent("#upload-result"));

  // Autocompletion from the loaded schema: typing a field's start inside a selection.
  await page.evaluate(() => {
    const editor = document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror;
    editor.setValue("{\n  \n}");
    editor.setCursor({ line: 1, ch: 2 });
    editor.focus();
  });
  await page.keyboard.type("ra");
  await page.waitForSelector(".CodeMirror-hints .CodeMirror-hint");
  seen.completions = await page.$$eval(".CodeMirror-hints .CodeMirror-hint", (h) => h.map((x) => x.textContent.trim()));

  await page.screenshot({ path: screenshot });
  console.log(JSON.stringify(seen));
} catch (error) {
  console.error(`graphiql test failed: ${error.message}\nseen so far: ${JSON.stringify(seen)}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
