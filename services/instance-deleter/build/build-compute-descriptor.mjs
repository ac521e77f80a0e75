// Build step (after tsc): writes dist/services/instance-deleter/compute-descriptor.json, the part of
// @google-cloud/compute's API descriptor (build/protos/protos.json, 11.7 MB) the deleter's seven clients
// need: their services whole, and every message and enum reachable from their methods, nested types
// included. Every client constructor parses the descriptor it was built with, so the full one costs each
// cold start about a second of CPU and 100 MB. compute-client.ts uses the trimmed one only with the same
// @google-cloud/compute version, and the full one otherwise.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// services/instance-deleter/build/ → the repository root.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const require = createRequire(path.join(root, 'package.json'));
const computePackage = require.resolve('@google-cloud/compute/package.json');
const { version } = require(computePackage);
const full = require('@google-cloud/compute/build/protos/protos.json');
// The protobufjs the clients themselves use, through their google-gax.
const { protobuf } = createRequire(computePackage)('google-gax');
const files = path.join(root, 'dist/services/instance-deleter/src/compute-client-files.js');
const { COMPUTE_SERVICES, COMPUTE_DESCRIPTOR_FILE } = await import(files);

const api = protobuf.Root.fromJSON(full);
const topLevel = (type) => {
  let top = type;
  while (top.parent instanceof protobuf.Type) top = top.parent;
  return top;
};
const needed = new Set();
const queue = [];
const add = (type) => {
  const top = topLevel(type);
  if (needed.has(top.fullName)) return;
  needed.add(top.fullName);
  queue.push(top);
};
for (const name of COMPUTE_SERVICES) add(api.lookupService(`google.cloud.compute.v1.${name}`));
const visit = (node) => {
  if (node instanceof protobuf.Service)
    for (const method of node.methodsArray) {
      add(method.resolvedRequestType);
      add(method.resolvedResponseType);
    }
  if (node instanceof protobuf.Type)
    for (const field of node.fieldsArray) if (field.resolvedType) add(field.resolvedType);
  for (const child of node.nestedArray ?? []) visit(child);
};
while (queue.length > 0) {
  const next = queue.pop();
  next.resolveAll();
  visit(next);
}

// Each definition at its own nested path, with its namespaces' options.
const descriptor = full.options ? { options: full.options } : {};
for (const fullName of needed) {
  const parts = fullName.replace(/^\./, '').split('.');
  let from = full;
  let to = descriptor;
  for (const part of parts.slice(0, -1)) {
    from = from.nested[part];
    to.nested ??= {};
    to.nested[part] ??= from.options ? { options: from.options } : {};
    to = to.nested[part];
  }
  to.nested ??= {};
  to.nested[parts.at(-1)] = from.nested[parts.at(-1)];
}

const out = path.resolve(path.dirname(files), COMPUTE_DESCRIPTOR_FILE);
fs.writeFileSync(out, JSON.stringify({ computeVersion: version, services: COMPUTE_SERVICES, descriptor }));
console.log(
  `${path.relative(root, out)}: ${needed.size} definitions for ${COMPUTE_SERVICES.length} services, ${(fs.statSync(out).size / 1024).toFixed(0)} KiB`,
);
