// The delivery service's side of the hand-over directory, with stand-in channel senders (the real gateway
// path is tested in tests/test_gateway_delivery.py).
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";

import { gatewayFacts } from "../index.js";
import { startDelivery } from "../lib/delivery.js";

function handover() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "clawunits-delivery-"));
  fs.mkdirSync(path.join(dir, "queue"));
  fs.mkdirSync(path.join(dir, "done"));
  let n = 0;
  const put = (item) => {
    const name = `${String(Date.now() * 1e6 + n++).padStart(20, "0")}-${item.id}.json`;
    fs.writeFileSync(path.join(dir, "queue", name), JSON.stringify(item));
    return name;
  };
  const receipt = (name) => {
    try {
      return JSON.parse(fs.readFileSync(path.join(dir, "done", name), "utf8"));
    } catch {
      return undefined;
    }
  };
  return { dir, put, receipt };
}

async function waitFor(check, ms = 5000) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

const message = (id, to, text) => ({ id, kind: "message", channel: "telegram", account: null, to, texts: [text] });

describe("delivery service", () => {
  it("sends each chat's items in order, writes a receipt, then removes the item; writes its lease", async () => {
    const h = handover();
    const sent = [];
    const a = h.put(message("a", "1", "one"));
    const b = h.put(message("b", "1", "two"));
    const d = startDelivery({ dir: h.dir, send: async (i) => sent.push(i.texts[0]), wake: async () => {}, pid: 4242 });
    await waitFor(() => h.receipt(b) && !fs.existsSync(path.join(h.dir, "queue", b)));
    await d.stop();
    assert.deepEqual(sent, ["one", "two"]);
    assert.deepEqual(h.receipt(a), { id: "a", ok: true });
    assert.equal(fs.readFileSync(path.join(h.dir, "lease"), "utf8"), "4242\n");
    assert.equal(fs.statSync(path.join(h.dir, "done", a)).mode & 0o777, 0o600);
  });

  it("never sends an item that already has a receipt (sent before a crash)", async () => {
    const h = handover();
    const name = h.put(message("x", "1", "already"));
    fs.writeFileSync(path.join(h.dir, "done", name), JSON.stringify({ id: "x", ok: true }));
    const sent = [];
    const d = startDelivery({ dir: h.dir, send: async (i) => sent.push(i.id), wake: async () => {} });
    await waitFor(() => !fs.existsSync(path.join(h.dir, "queue", name)));
    await d.stop();
    assert.deepEqual(sent, []);
  });

  it("a hanging chat holds up no other chat; a refused send is a receipt with the channel's error", async () => {
    const h = handover();
    const sent = [];
    const hang = h.put(message("h", "hanging", "never"));
    const ok = h.put(message("o", "2", "fine"));
    const bad = h.put(message("b", "3", "refused"));
    const send = (i) => {
      if (i.to === "hanging") return new Promise(() => {});
      if (i.to === "3") return Promise.reject(new Error("Telegram send failed: chat not found"));
      sent.push(i.id);
      return Promise.resolve();
    };
    const d = startDelivery({ dir: h.dir, send, wake: async () => {} });
    await waitFor(() => h.receipt(ok) && h.receipt(bad));
    assert.deepEqual(h.receipt(bad), { id: "b", ok: false, error: "Telegram send failed: chat not found" });
    assert.deepEqual(sent, ["o"]);
    assert.equal(h.receipt(hang), undefined);
    assert.ok(fs.existsSync(path.join(h.dir, "queue", hang)));
    void d.stop(); // the hanging send never ends: stop reading, without waiting for it
  });

  it("wakes go to their agent session", async () => {
    const h = handover();
    const woken = [];
    const name = h.put({ id: "w", kind: "wake", texts: ["done"], sessionKey: "agent:ops:main", agentId: "ops" });
    const d = startDelivery({ dir: h.dir, send: async () => {}, wake: async (i) => woken.push(i.sessionKey) });
    await waitFor(() => h.receipt(name));
    await d.stop();
    assert.deepEqual(woken, ["agent:ops:main"]);
  });
});

describe("gateway facts in the config sync", () => {
  it("fills in the gateway's state dir, config path and profile where the plugin config is silent", () => {
    const env = { OPENCLAW_STATE_DIR: "/srv/oc", OPENCLAW_CONFIG_PATH: "/srv/oc/openclaw.json" };
    assert.deepEqual(gatewayFacts({}, env), { openclawStateDir: "/srv/oc", openclawConfigPath: "/srv/oc/openclaw.json" });
    assert.deepEqual(gatewayFacts({ openclawStateDir: "/mine" }, env), { openclawConfigPath: "/srv/oc/openclaw.json" });
    assert.deepEqual(gatewayFacts({}, {}), {});
  });
});
