import neo4j from "neo4j-driver";
import { hashCanonical, type EventOf } from "@auditgraph/core";
import { type Batch, type Step, base, json, ofType } from "./common.js";
import { statement } from "./statement.js";

// Retriever runs: the query, the documents returned, and the model calls that may have used them.

const RETRIEVER_START = statement("retrievals", "retriever-start");

// A document's node holds its latest content; RETURNED keeps the hash of the content this
// retrieval returned, so a document that changed between two retrievals still shows which was seen.
// Then, in the same statement, USED_BY. The rule: a retrieval's documents were used by every model
// call of the same trace that started after the retrieval ended (by event id, the producer's
// capture order). In a chain that is the call the documents were put in front of; in an agent,
// every later call, whose message history holds them. For an audit trail erring towards "may have
// influenced" is the safe side: a call that never saw a document is linked at worst, one that did
// is never missed.
const RETRIEVER_END = statement("retrievals", "retriever-end");

const RETRIEVER_ERROR = statement("retrievals", "retriever-error");

/**
 * A retrieved document's key within its tenant: the id the retriever gave it, else the hash of
 * its content and metadata (the same text from the same source is the same document).
 */
function documentRows(documents: EventOf<"retriever.end">["payload"]["documents"]) {
  const seen = new Set<string>();
  return documents.flatMap((doc, rank) => {
    const contentHash = hashCanonical({ pageContent: doc.pageContent, metadata: doc.metadata });
    const id = doc.id ?? `sha256:${contentHash}`;
    // The first place a document is returned at is its rank; a repeat adds nothing.
    if (seen.has(id)) return [];
    seen.add(id);
    return [{ id, sourceId: doc.id ?? null, content: doc.pageContent, metadata: json(doc.metadata), contentHash, rank: neo4j.int(rank) }];
  });
}

const retrieved = (b: Batch) => ofType(b.records, "retriever.end").map((r) => ({ ...base(r), documents: documentRows(r.event.payload.documents) }));

export const retrievalSteps = {
  retrieverStart: {
    cypher: RETRIEVER_START,
    rows: (b) => ofType(b.records, "retriever.start").map((r) => ({ ...base(r), name: r.event.name ?? null, query: r.event.payload.query })),
  },
  retrieverEnd: { cypher: RETRIEVER_END, rows: retrieved },
  retrieverError: {
    cypher: RETRIEVER_ERROR,
    rows: (b) => ofType(b.records, "retriever.error").map((r) => ({ ...base(r), error: json(r.event.payload.error) })),
  },
} satisfies Record<string, Step>;
