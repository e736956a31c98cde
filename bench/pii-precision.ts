/**
 * PII detector quality: precision and recall of `new Redactor({ pii: true })` on the labelled
 * corpus packages/redaction/test/fixtures/pii-corpus.json (true cases: e-mails, phone numbers of many
 * countries, cards, IBANs, IPs, US SSNs; false cases: invoice, order and tracking numbers,
 * versions, SKUs, dates, prices, UUIDs, hashes, postal codes). Scored per string: a true case
 * counts when its kind was replaced, a false case is a false positive when anything was.
 * Goal: both at least 0.95 (the test packages/redaction/test/pii-precision.test.ts holds the gate).
 *
 * Run: npm run bench:pii (see bench/README.md). BENCH_JSON=1 also prints the result as JSON.
 */
import { PII_CORPUS, scoreCorpus } from "../packages/redaction/test/pii-corpus.js";

const score = scoreCorpus(PII_CORPUS);
const positives = PII_CORPUS.filter((e) => e.label).length;
console.log(`corpus: ${PII_CORPUS.length} strings (${positives} with personal data, ${PII_CORPUS.length - positives} without)`);
console.log(`precision ${score.precision.toFixed(3)}  recall ${score.recall.toFixed(3)}  (true positives ${score.truePositives})`);
for (const e of score.falsePositives) console.log(`  false positive [${e.kind}] ${JSON.stringify(e.text)}`);
for (const e of score.falseNegatives) console.log(`  missed [${e.kind}] ${JSON.stringify(e.text)}`);
const ok = score.precision >= 0.95 && score.recall >= 0.95;
console.log(`goal (precision and recall >= 0.95): ${ok ? "met" : "NOT met"}`);
if (process.env.BENCH_JSON) console.log(JSON.stringify({ ...score, corpus: PII_CORPUS.length }));
process.exitCode = ok ? 0 : 1;
