// The HTML lineage report in a real headless Chromium (the system's, driven by playwright-core):
// the graph library draws the lineage read from Neo4j, a click shows a node's details, and prompt
// text cannot run as script. No Chromium is a failure with the reason, never a skip.
import { execFile } from "node:child_process";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BATCH_JOB_NAME, type UserEvent } from "@auditgraph/core";
import type { Lineage } from "@auditgraph/graph";
import { waitUntilIdle } from "@auditgraph/worker";
import { runDemo, type DemoResult } from "@auditgraph/cli";
import { chromiumPath } from "./browser.js";
import { isolatedConfig, sampleTrace, startPipeline } from "./helpers.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = join(ROOT, "packages/cli/bin/auditgraph.js");
const HOSTILE_PROMPT = "add 1 and 2 </script><img src=x onerror=alert(1)>";
const HOSTILE_OUTPUT = "3 <script>alert(2)</script><svg onload=alert(3)>";

/** What the page must draw for a lineage: its nodes (by kind) and relationships (by name), counted here independently. */
function expectedGraph(l: Lineage) {
  const earlier = new Set(l.toolCalls.flatMap((t) => (t.requestedBy && t.requestedBy !== l.llmCall.id ? [t.requestedBy] : [])));
  const nodes = 8 + (l.trace.sessionId ? 1 : 0) + l.toolCalls.length + earlier.size;
  const relationships = [
    "INPUT_TO",
    "GENERATED",
    "USED_MODEL",
    "PART_OF",
    "REQUESTED_BY",
    "HANDLED_BY",
    "HAS_VERSION",
    "ACTED_ON_BEHALF_OF",
    ...(l.trace.sessionId ? ["IN_SESSION"] : []),
    ...l.toolCalls.map(() => "PART_OF"),
    ...l.toolCalls.flatMap((t) => (t.requestedBy ? ["REQUESTED"] : [])),
    ...[...earlier].map(() => "PART_OF"),
  ].sort();
  return { nodes, relationships };
}

/** The few Cytoscape.js calls the page is queried with (run inside the browser). */
interface BoxLike {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}
interface ElementLike {
  id(): string;
  data(key: string): string;
  renderedPosition(): { x: number; y: number };
  renderedBoundingBox(options?: { includeLabels?: boolean }): BoxLike;
  source(): ElementLike;
  target(): ElementLike;
}
interface CollectionLike {
  length: number;
  map<T>(f: (e: ElementLike) => T): T[];
}
interface CyLike {
  nodes(): CollectionLike;
  edges(): CollectionLike;
  getElementById(id: string): CollectionLike & ElementLike;
  container(): { getBoundingClientRect(): { left: number; top: number; right: number; bottom: number } };
  width(): number;
  height(): number;
}

// The browser globals the page.evaluate callbacks use (this file is compiled without the DOM library).
declare const window: { cy: CyLike; innerWidth: number; innerHeight: number };
declare const document: {
  documentElement: { getAttribute(name: string): string | null };
  querySelectorAll(selector: string): { length: number };
};

interface Opened {
  page: Page;
  problems: string[];
  dialogs: string[];
  requests: string[];
}

let browser: Browser | undefined;
let noBrowser: Error | undefined;
const opened: Page[] = [];

/** Loads a report over file:// and waits for the graph library's layout to finish. */
async function open(file: string): Promise<Opened> {
  if (!browser) throw noBrowser ?? new Error("no browser was launched");
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  opened.push(page);
  const problems: string[] = [];
  const dialogs: string[] = [];
  const requests: string[] = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on("dialog", (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss();
  });
  page.on("request", (r) => requests.push(r.url()));
  await page.goto(pathToFileURL(file).href);
  try {
    await page.waitForFunction(() => document.documentElement.getAttribute("data-ready") === "true", null, { timeout: 20_000 });
  } catch (error) {
    throw new Error(`the graph in ${file} was never laid out (${(error as Error).message}); the page said: ${JSON.stringify([...problems, ...dialogs])}`);
  }
  return { page, problems, dialogs, requests };
}

/** Clicks a node where the library drew it, as a user would. */
async function clickNode(page: Page, id: string) {
  const at = await page.evaluate((nodeId) => {
    const cy = window.cy;
    const node = cy.getElementById(nodeId);
    if (node.length !== 1) throw new Error(`no node ${nodeId} in the graph`);
    const p = node.renderedPosition();
    const box = cy.container().getBoundingClientRect();
    return { x: box.left + p.x, y: box.top + p.y };
  }, id);
  await page.mouse.click(at.x, at.y);
}

const detailsText = (page: Page) => page.locator("#details").textContent();

let demo: DemoResult;
let hostileFile: string;
let hostileLineage: Lineage;
let cliOutput: string;

beforeAll(async () => {
  // Kept, not thrown: every test that needs the browser then fails with the reason (a throw here would skip them).
  try {
    browser = await chromium.launch({ executablePath: await chromiumPath(), headless: true });
  } catch (error) {
    noBrowser = error as Error;
  }

  // The demo writes its report with renderLineageHtml, from the lineage it reads back from Neo4j.
  demo = await runDemo(await isolatedConfig(), () => undefined);

  // A trace whose prompt and answer are markup, through the real worker and graph, drawn by the CLI.
  const config = await isolatedConfig();
  const pipeline = await startPipeline(config);
  try {
    const events = sampleTrace().map((e) => {
      if (e.type === "llm.start") return { ...e, payload: { ...e.payload, messages: [{ role: "user", content: HOSTILE_PROMPT }] } };
      if (e.type === "llm.end") return { ...e, payload: { ...e.payload, output: { ...e.payload.output, text: HOSTILE_OUTPUT } } };
      return e;
    }) as UserEvent[];
    await pipeline.queue.add(BATCH_JOB_NAME, { events });
    await waitUntilIdle(pipeline.queue);
    const lineage = await pipeline.graph.lineage(events[0]!.traceId);
    if (!lineage) throw new Error("the hostile trace's lineage is not in the graph");
    hostileLineage = lineage;
  } finally {
    await pipeline.stop();
  }
  hostileFile = join(await mkdtemp(join(tmpdir(), "auditgraph-html-")), "hostile.html");
  const { stdout, stderr } = await run(process.execPath, [BIN, "trace", hostileLineage.trace.id, "--html", hostileFile]);
  cliOutput = stdout + stderr;
}, 900_000);

afterAll(async () => {
  for (const page of opened) await page.close().catch(() => undefined);
  await browser?.close();
});

describe("the HTML lineage report, in headless Chromium", () => {
  it("is one self-contained file with the graph library inlined", async () => {
    const html = await readFile(demo.reportPath, "utf8");
    expect(html).toMatch(/Cytoscape Consortium/); // the library's own licence header, inlined
    expect(html).toContain("cytoscape-dagre");
    expect(html).not.toMatch(/<script[^>]*\ssrc=|<link[^>]*\shref="?https?:|(src|href)="https?:/);
    expect(html).not.toContain("<svg");
  });

  it("draws every node and relationship of the lineage with Cytoscape.js and a hierarchical layout, without errors", async () => {
    const { page, problems, requests } = await open(demo.reportPath);
    const expected = expectedGraph(demo.lineage);
    const drawn = await page.evaluate(() => {
      const cy = window.cy;
      const box = cy.container().getBoundingClientRect();
      return {
        nodes: cy.nodes().map((n) => ({ id: n.id(), label: n.data("label"), at: n.renderedPosition(), box: n.renderedBoundingBox({ includeLabels: true }) })),
        edges: cy.edges().map((e) => ({ label: e.data("label"), from: e.source().renderedPosition(), to: e.target().renderedPosition() })),
        width: cy.width(),
        height: cy.height(),
        container: { left: box.left, top: box.top, right: box.right, bottom: box.bottom },
        viewport: { width: window.innerWidth, height: window.innerHeight },
      };
    });
    expect(problems).toEqual([]);
    expect(requests).toEqual([pathToFileURL(demo.reportPath).href]); // nothing else fetched
    expect(demo.lineage.toolCalls.length).toBe(2);
    expect(drawn.nodes).toHaveLength(expected.nodes);
    expect(drawn.edges.map((e) => e.label).sort()).toEqual(expected.relationships);
    const labels = drawn.nodes.map((n) => n.label).join("\n");
    for (const text of [
      `User ${demo.lineage.user.id}`,
      `v${demo.lineage.agent.version}`,
      demo.lineage.model.version,
      "Prompt",
      "LLM call",
      "Tool call catalog_lookup",
      "Tool call calculator",
    ]) {
      expect(labels).toContain(text);
    }
    // On screen: the graph area inside the window, every node (with its label) inside the graph area.
    expect(drawn.container.left).toBeGreaterThanOrEqual(0);
    expect(drawn.container.top).toBeGreaterThanOrEqual(0);
    expect(drawn.container.right).toBeLessThanOrEqual(drawn.viewport.width);
    expect(drawn.container.bottom).toBeLessThanOrEqual(drawn.viewport.height);
    for (const n of drawn.nodes) {
      expect(n.box.x1, n.id).toBeGreaterThanOrEqual(0);
      expect(n.box.y1, n.id).toBeGreaterThanOrEqual(0);
      expect(n.box.x2, n.id).toBeLessThanOrEqual(drawn.width);
      expect(n.box.y2, n.id).toBeLessThanOrEqual(drawn.height);
    }
    // Laid out, not piled up: no two nodes overlap, and every relationship points downwards (dagre's ranks, top to bottom).
    for (const [i, a] of drawn.nodes.entries())
      for (const b of drawn.nodes.slice(i + 1)) {
        const apart = a.box.x2 <= b.box.x1 || b.box.x2 <= a.box.x1 || a.box.y2 <= b.box.y1 || b.box.y2 <= a.box.y1;
        expect(apart, `${a.id} overlaps ${b.id}`).toBe(true);
      }
    for (const e of drawn.edges) expect(e.to.y, e.label).toBeGreaterThan(e.from.y);
  });

  it("shows a clicked node's properties in the details panel", async () => {
    const { page, problems } = await open(demo.reportPath);
    expect(await detailsText(page)).not.toContain(demo.lineage.output.text);
    await clickNode(page, "output");
    const output = await detailsText(page);
    expect(output).toContain(demo.lineage.output.text);
    expect(output).toContain(demo.lineage.output.id);
    expect(output).toContain(demo.lineage.output.recordedAt);
    await clickNode(page, "agentVersion");
    const agent = await detailsText(page);
    expect(agent).toContain(demo.lineage.agent.version);
    expect(agent).not.toContain(demo.lineage.output.text);
    await clickNode(page, "tool1");
    expect(await detailsText(page)).toContain("268.5");
    expect(problems).toEqual([]);
  });

  it("written by `auditgraph trace <id> --html`, shows markup from the prompt and the answer as text and never runs it", async () => {
    expect(cliOutput).toContain(`lineage report: ${hostileFile}`);
    expect(hostileLineage.output.text).toBe(HOSTILE_OUTPUT);
    const { page, problems, dialogs } = await open(hostileFile);
    await clickNode(page, "prompt");
    expect(await detailsText(page)).toContain(HOSTILE_PROMPT);
    await clickNode(page, "output");
    expect(await detailsText(page)).toContain(HOSTILE_OUTPUT);
    expect(await page.locator(".answer").textContent()).toBe(HOSTILE_OUTPUT);
    await page.waitForTimeout(300); // an injected <img onerror> would have fired by now
    expect(dialogs).toEqual([]);
    expect(await page.evaluate(() => document.querySelectorAll("img, svg, #details script").length)).toBe(0);
    expect(await page.evaluate(() => document.querySelectorAll("script").length)).toBe(4); // the data block and the three inlined
    expect(problems).toEqual([]);
    expect(await page.evaluate(() => window.cy.nodes().length)).toBe(expectedGraph(hostileLineage).nodes);
  });
});
