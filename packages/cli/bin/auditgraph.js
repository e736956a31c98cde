#!/usr/bin/env node
// A committed entry point, so npm links `auditgraph` at install time; the code is built to dist/.
import "../dist/main.js";
