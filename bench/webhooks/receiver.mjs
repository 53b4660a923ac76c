// A webhook receiver for the delivery benchmark: answers 204 at once and
// counts arrivals. GET /stats gives {count, first_ms, last_ms, latencies}
// where a latency is arrival time minus the event's own `timestamp`.
import http from "node:http";

const port = Number(process.argv[2] || 0);
let count = 0, first = 0, last = 0;
const latencies = [];
http
  .createServer((req, res) => {
    if (req.method === "GET") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ count, first_ms: first, last_ms: last, latencies }));
      return;
    }
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const now = Date.now();
      if (!first) first = now;
      last = now;
      count += 1;
      try {
        const event = JSON.parse(Buffer.concat(chunks).toString());
        latencies.push(now - Date.parse(event.timestamp));
      } catch {}
      res.writeHead(204);
      res.end();
    });
  })
  .listen(port, "127.0.0.1", function () {
    console.log(this.address().port);
  });
