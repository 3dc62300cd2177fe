// The CloudEvents JavaScript SDK as a producer and as a webhook receiver would use it.
//   node client.mjs send  < {"url": ..., "token": ...}      -> {"<mode>": {"status", "body"}}
//   node client.mjs read  < [{"headers": {...}, "body": "<base64>"}]  -> [event as JSON]
import { CloudEvent, HTTP } from "cloudevents";

const SUBJECT = "Ünï subject";
const BLOB = Uint8Array.from([0, 1, 98, 255]);

async function stdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

function event(id, extra = {}) {
  return new CloudEvent({ id, source: "/js-sdk", type: "order.created", subject: SUBJECT, data: { order: id }, ...extra });
}

function messages() {
  const batch = [event("js batch 0"), event("js batch 1")];
  return {
    structured: HTTP.structured(event("js structured", { partitionkey: "c-1" })),
    binary: HTTP.binary(event("js binary")),
    blob: HTTP.binary(event("js blob", { datacontenttype: "application/octet-stream", data: BLOB })),
    batch: { headers: { "content-type": "application/cloudevents-batch+json" }, body: JSON.stringify(batch) },
  };
}

async function send({ url, token }) {
  const answers = {};
  for (const [mode, message] of Object.entries(messages())) {
    const response = await fetch(url, {
      method: "POST",
      headers: { ...message.headers, authorization: `Bearer ${token}` },
      body: message.body,
    });
    answers[mode] = { status: response.status, body: await response.json(), headers: message.headers };
  }
  return answers;
}

function read(requests) {
  return requests.map(({ headers, body }) => {
    const received = HTTP.toEvent({ headers, body: Buffer.from(body, "base64").toString("utf8") });
    const json = received.toJSON(); // which leaves out data beside data_base64: take it from the event
    json.data = ArrayBuffer.isView(received.data) ? Array.from(received.data) : received.data;
    return json;
  });
}

const command = process.argv[2];
const input = await stdin();
const output = command === "send" ? await send(input) : read(input);
process.stdout.write(JSON.stringify(output));
