import { readFileSync } from "node:fs";
import { Redactor, type RedactionConfig } from "@auditgraph/redaction";

/** One labelled string: `label` true when it holds personal data of `kind`; false cases name what ordinary text they are. */
export interface CorpusEntry {
  text: string;
  label: boolean;
  kind: string;
}

export const PII_CORPUS: CorpusEntry[] = JSON.parse(readFileSync(new URL("./fixtures/pii-corpus.json", import.meta.url), "utf8")) as CorpusEntry[];

export interface CorpusScore {
  precision: number;
  recall: number;
  truePositives: number;
  falsePositives: CorpusEntry[];
  falseNegatives: CorpusEntry[];
}

/**
 * Precision and recall of the PII detectors on the corpus, per string: a true case counts when
 * its kind is among what was replaced (another kind alone is a miss), a false case is a false
 * positive when anything was replaced.
 */
export function scoreCorpus(corpus: readonly CorpusEntry[] = PII_CORPUS, config: RedactionConfig = { pii: true }): CorpusScore {
  const redactor = new Redactor(config);
  let truePositives = 0;
  const falsePositives: CorpusEntry[] = [];
  const falseNegatives: CorpusEntry[] = [];
  for (const entry of corpus) {
    const { counts } = redactor.redactText(entry.text);
    if (entry.label) {
      if ((counts[entry.kind] ?? 0) > 0) truePositives++;
      else falseNegatives.push(entry);
    } else if (Object.keys(counts).length > 0) {
      falsePositives.push(entry);
    }
  }
  const flagged = truePositives + falsePositives.length;
  return {
    precision: flagged === 0 ? 0 : truePositives / flagged,
    recall: truePositives / (truePositives + falseNegatives.length),
    truePositives,
    falsePositives,
    falseNegatives,
  };
}
