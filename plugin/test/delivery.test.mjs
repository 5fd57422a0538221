// The delivery service's side of the hand-over directory, with stand-in channel senders (the real gateway
// path is tested in tests/test_gateway_delivery.py).
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";

import { gatewayFacts } from "../index.js";
import { channelEditor, openclawRoot, startDelivery } from "../lib/delivery.js";

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

  it("a message's receipt carries the ids the channel gave (the status message is edited by its id)", async () => {
    const h = handover();
    const name = h.put(message("s", "1", "status"));
    const d = startDelivery({ dir: h.dir, send: async () => ["5001"], wake: async () => {} });
    await waitFor(() => h.receipt(name));
    await d.stop();
    assert.deepEqual(h.receipt(name), { id: "s", ok: true, messageIds: ["5001"] });
  });

  it("an edit changes the message it names and is never sent as a new message, even when it fails", async () => {
    const h = handover();
    const sent = [];
    const edited = [];
    const edit = async (i) => {
      if (i.messageId === "gone") throw new Error("Bad Request: message to edit not found");
      edited.push([i.to, i.messageId, i.texts[0]]);
    };
    const ok = h.put({ ...message("e1", "1", "running"), kind: "edit", messageId: "5001" });
    const gone = h.put({ ...message("e2", "1", "done"), kind: "edit", messageId: "gone" });
    const d = startDelivery({ dir: h.dir, send: async (i) => sent.push(i.id), wake: async () => {}, edit });
    await waitFor(() => h.receipt(ok) && h.receipt(gone));
    await d.stop();
    assert.deepEqual(edited, [["1", "5001", "running"]]);
    assert.deepEqual(sent, []);
    assert.deepEqual(h.receipt(ok), { id: "e1", ok: true });
    assert.equal(h.receipt(gone).ok, false);
    assert.match(h.receipt(gone).error, /message to edit not found/);
  });

  it("a service that cannot edit refuses an edit in its receipt (and sends nothing)", async () => {
    const h = handover();
    const sent = [];
    const name = h.put({ ...message("e", "1", "x"), kind: "edit", messageId: "1" });
    const d = startDelivery({ dir: h.dir, send: async (i) => sent.push(i.id), wake: async () => {} });
    await waitFor(() => h.receipt(name));
    await d.stop();
    assert.equal(h.receipt(name).ok, false);
    assert.deepEqual(sent, []);
  });

  it("finds the running OpenClaw's package from its launcher, and the Telegram channel's edit in it", async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "clawunits-openclaw-"));
    fs.writeFileSync(path.join(root, "package.json"), JSON.stringify({ name: "openclaw", type: "module" }));
    fs.writeFileSync(path.join(root, "openclaw.mjs"), "");
    const ext = path.join(root, "dist", "extensions", "telegram");
    fs.mkdirSync(ext, { recursive: true });
    fs.writeFileSync(path.join(ext, "runtime-api.js"), "export async function editMessageTelegram() { return 'ed'; }\n");
    fs.mkdirSync(path.join(root, "bin"));
    fs.symlinkSync(path.join(root, "openclaw.mjs"), path.join(root, "bin", "openclaw"));
    assert.equal(openclawRoot(path.join(root, "bin", "openclaw")), fs.realpathSync(root));
    assert.equal(openclawRoot(path.join(root, "nowhere")), undefined);
    const editor = await channelEditor("telegram", root);
    assert.equal(await editor(), "ed");
    assert.equal(await channelEditor("discord", root), undefined);
  });
});
