// The trace page's lineage view: Cytoscape.js (with its dagre layout) draws the graph from the
// page's JSON block. Labels are canvas text and details are set with textContent: no recorded
// content is ever parsed as HTML. Loaded as a file: the CSP allows no inline script.
(() => {
  var dataEl = document.getElementById("lineage-data");
  var container = document.getElementById("lineage-graph");
  if (!dataEl || !container || typeof cytoscape !== "function") return;
  var data = JSON.parse(dataEl.textContent);
  var COLOURS = {
    trace: ["#eceff5", "#5a6478"],
    user: ["#fdf1dc", "#c98a1b"],
    agent: ["#fde6cf", "#c4661f"],
    session: ["#f4f5f8", "#8a93a6"],
    llm: ["#e3ecfb", "#3867d6"],
    model: ["#f1e6fb", "#8e4fc4"],
    output: ["#c9ecd4", "#2f8f4e"],
    tool: ["#e1f3f6", "#2a8a9c"],
    toolError: ["#fbe3e3", "#c0392b"],
    retrieval: ["#eef6e1", "#6a9a2a"],
    document: ["#f7f7e6", "#9a9a2a"],
    flag: ["#fde2e1", "#b3261e"],
    escalation: ["#fbd5d3", "#8c1d18"],
  };
  var style = [
    {
      selector: "node",
      style: {
        shape: "round-rectangle",
        width: "label",
        height: "label",
        padding: "8px",
        label: "data(label)",
        "text-wrap": "wrap",
        "text-valign": "center",
        "text-halign": "center",
        "font-size": 11,
        "font-family": "system-ui, sans-serif",
        color: "#1d2330",
        "border-width": 1.5,
      },
    },
    { selector: "node:selected", style: { "border-width": 4, "border-color": "#f39c12" } },
    {
      selector: "edge",
      style: {
        width: 1.2,
        "curve-style": "bezier",
        "line-color": "#8a93a6",
        "target-arrow-color": "#8a93a6",
        "target-arrow-shape": "triangle",
        label: "data(label)",
        "font-size": 8,
        color: "#4d5566",
        "text-rotation": "autorotate",
        "text-background-color": "#ffffff",
        "text-background-opacity": 0.85,
      },
    },
  ];
  Object.keys(COLOURS).forEach((k) => {
    style.push({ selector: `node.${k}`, style: { "background-color": COLOURS[k][0], "border-color": COLOURS[k][1] } });
  });
  var cy = cytoscape({
    container: container,
    elements: {
      nodes: data.nodes.map((n) => ({ data: { id: n.id, label: n.label }, classes: n.kind })),
      edges: data.edges.map((e) => ({ data: { id: e.id, source: e.source, target: e.target, label: e.label } })),
    },
    style: style,
    minZoom: 0.1,
    maxZoom: 3,
    boxSelectionEnabled: false,
  });
  window.lineageCy = cy;
  var details = document.getElementById("lineage-details");
  cy.on("tap", "node", (e) => {
    if (!details) return;
    var h = document.createElement("h3");
    h.textContent = e.target.data("label");
    var p = document.createElement("p");
    p.textContent = e.target
      .connectedEdges()
      .map((x) => x.data("label"))
      .join(", ");
    details.replaceChildren(h, p);
  });
  var layout = cy.layout({ name: "dagre", rankDir: "LR", nodeSep: 18, rankSep: 60, padding: 16, fit: true });
  layout.one("layoutstop", () => {
    container.setAttribute("data-ready", "true");
  });
  layout.run();
})();
