// The system Chromium for the headless-browser tests (the lineage page, the console).
import { execFile } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { chromium, type Browser } from "playwright-core";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The system Chromium, installed by scripts/chromium-path.sh when missing: no browser is a failure with the reason, never a skip. */
export async function chromiumPath(): Promise<string> {
  try {
    const { stdout } = await run(join(ROOT, "scripts/chromium-path.sh"), { timeout: 900_000, maxBuffer: 64 << 20 });
    return stdout.trim();
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(
      `no Chromium for the headless-browser tests: scripts/chromium-path.sh failed: ${e.stderr?.trim() || e.message}\n` +
        "Install Debian's chromium package (apt-get install -y chromium) or set CHROMIUM_PATH to a Chromium/Chrome binary.",
    );
  }
}

/** A headless Chromium (close it in afterAll). */
export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: await chromiumPath(), headless: true });
}
