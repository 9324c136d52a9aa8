// A Lambda-style handler for pg_streams' SDK compatibility test
// (test/t/012_sdk_compat.pl), served on loopback:
//
//     node test/sdk/handler_server.js PORT
//
// POST /batch: the event goes through Powertools' BatchProcessor
// (EventType.DynamoDBStreams, processPartialResponse), whose record handler
// unmarshalls Keys, NewImage and OldImage with @aws-sdk/util-dynamodb (with
// its default options and with wrapNumbers). A record whose NewImage has
// poison = true fails on purpose; any other failure is an SDK that could not
// read the record. The answer is Powertools' {"batchItemFailures": [...]};
// when every record failed, Powertools throws and the answer is 500 with
// {"errorMessage": ...}.
// GET /_seen: what the handler saw, as JSON: {"ok": [{id, seq, numbers}],
// "failed": [{id, seq, error}], "batches": n, "without_arn": n}; numbers
// are the N texts as NumberValue gives them back, by attribute path;
// without_arn counts records that came without Lambda's eventSourceARN.
'use strict';
const http = require('http');
const { unmarshall } = require('@aws-sdk/util-dynamodb');
const { BatchProcessor, EventType, processPartialResponse } = require('@aws-lambda-powertools/batch');

const processor = new BatchProcessor(EventType.DynamoDBStreams);
const seen = { ok: [], failed: [], batches: 0, without_arn: 0 };

function numbersOf(image) {
  const out = {};
  const walk = (name, v) => {
    if (v && typeof v === 'object' && v.constructor && v.constructor.name === 'NumberValue') out[name] = v.toString();
    else if (Array.isArray(v)) v.forEach((e, i) => walk(`${name}[${i}]`, e));
    else if (v && typeof v === 'object' && !(v instanceof Uint8Array) && !(v instanceof Set))
      for (const [k, e] of Object.entries(v)) walk(`${name}.${k}`, e);
  };
  for (const [k, v] of Object.entries(image)) walk(k, v);
  return out;
}

async function recordHandler(record) {
  const ddb = record.dynamodb;
  const id = ddb.Keys && ddb.Keys.id ? ddb.Keys.id.N : undefined;
  if (typeof record.eventSourceARN !== 'string') seen.without_arn += 1;
  try {
    const images = [ddb.Keys, ddb.NewImage, ddb.OldImage].filter((i) => i !== undefined);
    const plain = images.map((i) => unmarshall(i));
    const wrapped = images.map((i) => unmarshall(i, { wrapNumbers: true }));
    if (plain.length > 1 && plain[1].poison === true) throw new Error(`poison record ${id}`);
    seen.ok.push({ id, seq: ddb.SequenceNumber, numbers: numbersOf(wrapped[wrapped.length > 1 ? 1 : 0]) });
  } catch (err) {
    seen.failed.push({ id, seq: ddb.SequenceNumber, error: String(err && err.message) });
    throw err;
  }
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    if (req.method === 'GET' && req.url === '/_seen') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(seen));
      return;
    }
    if (req.method === 'GET' && req.url === '/_health') {
      res.writeHead(200);
      res.end('ok');
      return;
    }
    seen.batches += 1;
    try {
      const event = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const result = await processPartialResponse(event, recordHandler, processor);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(result));
    } catch (err) {
      res.writeHead(500, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ errorType: err && err.name, errorMessage: String(err && err.message) }));
    }
  });
});
server.listen(Number(process.argv[2]), '127.0.0.1');
