// Publish step events to actionrelay so that none is lost before a worker sees it.
//
// The rules (README, "Publishing step events"):
// - persistent messages (deliveryMode 2) with content type application/json;
// - publisher confirms: an event counts as sent only once RabbitMQ confirmed it;
// - on a nack, a return (no queue) or a lost connection, publish the same body
//   again: the same event_id, so the API sees the same Idempotency-Key.
//
//   node publish-step-events.js amqp://guest:guest@localhost:5672/ actionrelay.requests < events.jsonl
//
// One JSON step event per line on stdin. Exits 1 naming the events it could not
// send after its attempts.
"use strict";

const amqp = require("amqplib");

const IN_FLIGHT = 200; // publishes awaiting their confirm at once
const MAX_ID_BYTES = 255; // AMQP short strings

function stepMessage(event) {
  const id = String(event.event_id);
  return {
    id,
    body: Buffer.from(JSON.stringify(event)),
    options: {
      persistent: true,
      contentType: "application/json",
      mandatory: true,
      messageId: Buffer.byteLength(id) <= MAX_ID_BYTES ? id : undefined,
    },
  };
}

// Publish each message once on a new confirm channel; resolves to those to send again.
async function publishRound(connection, queue, messages) {
  let channel;
  try {
    channel = await connection.createConfirmChannel();
  } catch (err) {
    return messages;
  }
  const returned = new Set();
  channel.on("return", (msg) => returned.add(msg.properties.messageId));
  channel.on("error", () => {}); // a closed channel fails the pending confirms below
  const failed = [];
  try {
    for (let start = 0; start < messages.length; start += IN_FLIGHT) {
      const batch = messages.slice(start, start + IN_FLIGHT);
      const outcomes = await Promise.allSettled(
        batch.map(
          (m) =>
            new Promise((resolve, reject) =>
              channel.sendToQueue(queue, m.body, m.options, (err) => (err ? reject(err) : resolve()))
            )
        )
      );
      batch.forEach((m, i) => {
        if (outcomes[i].status === "rejected" || returned.has(m.id)) failed.push(m);
      });
    }
  } catch (err) {
    return messages; // the connection went away: every one is sent again
  } finally {
    await channel.close().catch(() => {});
  }
  return failed;
}

async function publishStepEvents(url, queue, events, attempts = 10) {
  let pending = events.map(stepMessage);
  const total = pending.length;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    let connection;
    try {
      connection = await amqp.connect(url);
      connection.on("error", () => {});
      pending = await publishRound(connection, queue, pending);
    } catch (err) {
      // cannot connect now: try again
    } finally {
      if (connection) await connection.close().catch(() => {});
    }
    if (pending.length === 0) return total;
    await new Promise((r) => setTimeout(r, Math.min(200 * 2 ** attempt, 5000)));
  }
  const ids = pending.slice(0, 10).map((m) => m.id).join(", ");
  throw new Error(`${pending.length} of ${total} events not confirmed after ${attempts} attempts: ${ids}`);
}

async function main() {
  const [url = "amqp://guest:guest@localhost:5672/", queue = "actionrelay.requests"] =
    process.argv.slice(2);
  let input = "";
  for await (const chunk of process.stdin) input += chunk;
  const events = input.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
  try {
    const sent = await publishStepEvents(url, queue, events);
    console.log(`${sent} events published and confirmed`);
  } catch (err) {
    console.error(`not sent: ${err.message}`);
    process.exit(1);
  }
}

module.exports = { publishStepEvents, stepMessage };

if (require.main === module) main();
