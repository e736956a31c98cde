// Business context for the detectors: a number labelled as an invoice, order, SKU or version
// number is ordinary business text, not personal data (see detectors.ts).

// Invoice, order, tracking, SKU and version numbers are written like SSNs, IPs and bare phone
// numbers (`version 10.2.3.4` is a valid IPv4, `Order 2125550147` a valid US number). The word in
// front says which it is: a candidate right after one of these labels (and an optional
// `no.`/`#`/`:`) is ordinary business text, not personal data. Grouped phone numbers are told
// apart by their groups instead (see groupedLikePlan in detectors.ts). Read on at most CONTEXT_WINDOW characters.
const LABEL_TAIL = String.raw`\.?\s*(?:(?:no|nr|n°|number|num|id|code)\.?\s*)?[:#]?\s*$`;
const BUSINESS_LABEL = new RegExp(
  String.raw`(?:^|[^\p{L}])(?:invoice|rechnung|facture|factura|fattura|credit note|order|bestellung|commande|pedido|` +
    String.raw`ticket|case|reference|reservation|booking|confirmation(?: code| number)?|tracking(?: number)?|shipment|parcel|` +
    String.raw`item(?: code)?|part|article|catalog(?:ue)?|model|batch|serial|isbn|` +
    String.raw`version|release|build|firmware|chapter|section|revision|patch)` +
    LABEL_TAIL,
  "iu",
);
// Abbreviations only as business writes them, in capitals: a lower-case `ref` or `po` is as likely
// to be a stray word, and letting real data through costs more than redacting an order number.
const BUSINESS_ABBREVIATION = new RegExp(String.raw`(?:^|[^\p{L}])(?:SKU|PO|INV|REF|EAN|UPC|FW|LOT|REV|VER|S/N)` + LABEL_TAIL, "u");
const CONTEXT_WINDOW = 40;

/** Whether the text just before `start` labels what follows as an invoice, order, SKU, version, ... number. */
export function labelledAsBusiness(text: string, start: number): boolean {
  const before = text.slice(Math.max(0, start - CONTEXT_WINDOW), start);
  return BUSINESS_LABEL.test(before) || BUSINESS_ABBREVIATION.test(before);
}
