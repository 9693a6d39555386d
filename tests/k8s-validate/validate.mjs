#!/usr/bin/env node
// Offline schema validation of Kubernetes objects for infergate's tests.
//
// `infergate bootstrap render` prints the Kubernetes objects it would apply. This
// tool checks each one against the Kubernetes OpenAPI schema (kubernetes-models)
// or the KEDA CRD schema (@kubernetes-models/keda), with no cluster involved.
// It is not a linter for style or policy, only for what an API server's schema
// would reject.
//
// Usage: validate.mjs [FILE]   (reads stdin when FILE is absent or "-")
// Input: a JSON array of objects, a JSON object (a List's items are expanded),
//        or a YAML stream of one or more documents.
// Output: one line per object, "ok Kind/name" or "FAIL Kind/name: <errors>".
// Exit:  0 all valid, 1 some object is invalid, 2 an object of a kind this tool
//        cannot validate (so nothing slips through unchecked) or unreadable input.

import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

// apiVersion/kind -> module exporting the model class of that name.
const MODELS = {
  "v1/ConfigMap": "kubernetes-models/v1/ConfigMap",
  "v1/Service": "kubernetes-models/v1/Service",
  "v1/Namespace": "kubernetes-models/v1/Namespace",
  "v1/ServiceAccount": "kubernetes-models/v1/ServiceAccount",
  "policy/v1/PodDisruptionBudget": "kubernetes-models/policy/v1/PodDisruptionBudget",
  "apps/v1/Deployment": "kubernetes-models/apps/v1/Deployment",
  "autoscaling/v2/HorizontalPodAutoscaler": "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler",
  "keda.sh/v1alpha1/ScaledObject": "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject",
};

function usage(msg) {
  process.stderr.write(`validate.mjs: ${msg}\nusage: validate.mjs [FILE|-]\n`);
  process.exit(2);
}

function readInput(args) {
  if (args.length > 1) usage("expected at most one FILE argument");
  const path = args.length === 0 || args[0] === "-" ? 0 : args[0];
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    usage(`cannot read ${path === 0 ? "stdin" : path}: ${e.message}`);
  }
  return "";
}

// Turn the input text into a flat list of objects.
function parseObjects(text) {
  const trimmed = text.trimStart();
  let docs;
  if (trimmed.startsWith("[") || trimmed.startsWith("{")) {
    try {
      const v = JSON.parse(text);
      docs = Array.isArray(v) ? v : [v];
    } catch (e) {
      usage(`input is not valid JSON: ${e.message}`);
    }
  } else {
    docs = [];
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors && doc.errors.length > 0) {
        usage(`input is not valid YAML: ${doc.errors[0].message}`);
      }
      docs.push(doc.toJS());
    }
  }
  const out = [];
  for (const d of docs) {
    if (d === null || d === undefined) continue; // empty YAML document
    if (typeof d === "object" && !Array.isArray(d) && typeof d.kind === "string" && d.kind.endsWith("List")
        && Array.isArray(d.items)) {
      out.push(...d.items);
    } else {
      out.push(d);
    }
  }
  return out;
}

function describe(obj) {
  const kind = obj && typeof obj.kind === "string" ? obj.kind : "<no kind>";
  const name = obj && obj.metadata && typeof obj.metadata.name === "string" ? obj.metadata.name : "<no name>";
  return `${kind}/${name}`;
}

// Render the ajv errors carried by a validation exception, one per path.
function formatErrors(e) {
  const list = Array.isArray(e.errors) ? e.errors : [];
  if (list.length === 0) return e.message || String(e);
  return list
    .map((x) => `${x.instancePath || "/"} ${x.message}${x.params && x.params.additionalProperty
      ? ` (${x.params.additionalProperty})` : ""}${x.params && x.params.allowedValues
      ? ` (${x.params.allowedValues.join(", ")})` : ""}`)
    .join("; ");
}

async function main() {
  const objects = parseObjects(readInput(process.argv.slice(2)));
  if (objects.length === 0) usage("no objects in the input");
  let failed = 0;
  let unknown = 0;
  for (const obj of objects) {
    const label = describe(obj);
    if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
      process.stdout.write(`UNKNOWN ${label}: not an object\n`);
      unknown++;
      continue;
    }
    const key = `${obj.apiVersion}/${obj.kind}`;
    const mod = MODELS[key];
    if (!mod) {
      process.stdout.write(`UNKNOWN ${label}: no schema for apiVersion ${obj.apiVersion} kind ${obj.kind}\n`);
      unknown++;
      continue;
    }
    const Model = (await import(mod))[obj.kind];
    try {
      new Model(obj).validate();
      process.stdout.write(`ok ${label}\n`);
    } catch (e) {
      process.stdout.write(`FAIL ${label}: ${formatErrors(e)}\n`);
      failed++;
    }
  }
  if (unknown > 0) process.exit(2);
  process.exit(failed > 0 ? 1 : 0);
}

main().catch((e) => {
  process.stderr.write(`validate.mjs: ${e.stack || e}\n`);
  process.exit(2);
});
