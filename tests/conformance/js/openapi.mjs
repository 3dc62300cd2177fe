// Ajv (JSON Schema 2020-12, strict) compiles every schema of EventFlow's OpenAPI document.
//   node openapi.mjs check < {"document": {...}, "samples": [{"schema": "Event", "value": ...}]}
//   -> {"compiled": [...names], "patterns": {"<pattern>": true}, "topic": {...}, "samples": [true|false, ...]}
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { document, samples } = JSON.parse(Buffer.concat(chunks).toString("utf8"));

// The components as one schema resource, so that "#/components/schemas/X" refs resolve.
const text = JSON.stringify({ $id: "https://eventflow.invalid/openapi", $defs: document.components.schemas });
const bundle = JSON.parse(text.replaceAll('"#/components/schemas/', '"https://eventflow.invalid/openapi#/$defs/'));
// Strict, less strictRequired: `not: {required: [a, b]}` ("not both") names properties defined one level up.
const ajv = new Ajv2020({ strict: true, strictRequired: false, allowUnionTypes: true, allErrors: true });
addFormats(ajv);
ajv.addSchema(bundle);

const compiled = Object.keys(document.components.schemas).map((name) => {
  ajv.getSchema(`https://eventflow.invalid/openapi#/$defs/${name}`) || ajv.compile({ $ref: `https://eventflow.invalid/openapi#/$defs/${name}` });
  return name;
});

const patterns = {};
JSON.stringify(document, (key, value) => {
  if (key === "pattern" || key === "patternProperties") {
    for (const source of typeof value === "string" ? [value] : Object.keys(value)) {
      patterns[source] = Boolean(new RegExp(source, "u"));
    }
  }
  return value;
});

const publish = document.paths["/topics/{topic}/events"].post;
const topicPattern = new RegExp(publish.parameters[0].schema.pattern, "u");
const topic = Object.fromEntries(["orders", "eu.orders-v2", "Orders", "orders\n", ""].map((n) => [n, topicPattern.test(n)]));
const checked = samples.map(({ schema, value }) => ajv.validate(`https://eventflow.invalid/openapi#/$defs/${schema}`, value));

process.stdout.write(JSON.stringify({ compiled, patterns, topic, samples: checked }));
