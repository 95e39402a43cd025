// kafkajs driver for kdr's compatibility tests. The Go test runs it as
//   node compat.js <mode> <broker> <topic> [args...]
// and reads JSON lines from stdout:
//   produce <broker> <topic> <codec none|gzip> <lines on stdin: key|value>  -> {"produced": n}
//   consume <broker> <topic> <count>                                         -> {"key","value","partition"} per record
//   member  <broker> <topic> <group>   (until SIGTERM; commits and leaves)   -> {"value"} per record
'use strict';
const { Kafka, CompressionTypes, logLevel } = require('kafkajs');

const [mode, broker, topic, ...rest] = process.argv.slice(2);
const kafka = new Kafka({ clientId: 'kdr-compat-kafkajs', brokers: [broker], logLevel: logLevel.ERROR });
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8').split('\n').filter((l) => l.length > 0);
}

async function produce(codec) {
  const producer = kafka.producer();
  await producer.connect();
  const messages = (await readStdin()).map((l) => {
    const i = l.indexOf('|');
    return { key: l.slice(0, i), value: l.slice(i + 1) };
  });
  await producer.send({
    topic, acks: -1, messages,
    compression: codec === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None,
  });
  await producer.disconnect();
  out({ produced: messages.length });
}

async function consume(count) {
  const consumer = kafka.consumer({ groupId: 'kafkajs-reader-' + Date.now(), maxWaitTimeInMs: 200 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let seen = 0;
  await new Promise((resolve) => {
    consumer.run({
      eachMessage: async ({ partition, message }) => {
        out({ key: message.key.toString(), value: message.value.toString(), partition });
        if (++seen >= count) resolve();
      },
    });
  });
  await consumer.disconnect();
}

async function member(group) {
  const consumer = kafka.consumer({
    groupId: group, sessionTimeout: 6000, heartbeatInterval: 300, rebalanceTimeout: 5000, maxWaitTimeInMs: 200,
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommitInterval: 200,
    eachMessage: async ({ message }) => out({ value: message.value.toString() }),
  });
  out({ joined: true });
  const stop = async () => {
    await consumer.disconnect(); // commits and leaves the group
    process.exit(0);
  };
  process.on('SIGTERM', stop);
}

(async () => {
  switch (mode) {
    case 'produce': return produce(rest[0]);
    case 'consume': return consume(Number(rest[0]));
    case 'member': return member(rest[0]);
    default: throw new Error('unknown mode ' + mode);
  }
})().catch((e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
});
