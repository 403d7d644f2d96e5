// reelbox upload page: hash each file with SHA-256 (streamed over File.slice, never the whole
// file in memory), then send it with tus 1.0.0 to /api/v1/uploads in chunks. Unfinished uploads
// are remembered in localStorage by a fingerprint of the file, so adding the same file after a
// reload continues where the server stopped.
//
// Written by hand on purpose: the project takes no third-party browser code outside the npm
// build, and the page must build with plain `cargo build`. The SHA-256 part is also loaded by
// a Rust test under node (module.exports at the end) and checked against known vectors.
"use strict";

(function (global) {
  // ---- SHA-256 (FIPS 180-4), incremental -------------------------------------------------

  var K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);

  function Sha256() {
    this.h = new Uint32Array([
      0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ]);
    this.w = new Uint32Array(64);
    this.buf = new Uint8Array(64);
    this.bufLen = 0;
    this.bytes = 0;
  }

  // Process one 64-byte block of `p` starting at `off`.
  Sha256.prototype.block = function (p, off) {
    var w = this.w;
    var h = this.h;
    var t, x, y;
    for (t = 0; t < 16; t++) {
      var j = off + t * 4;
      w[t] = (p[j] << 24) | (p[j + 1] << 16) | (p[j + 2] << 8) | p[j + 3];
    }
    for (t = 16; t < 64; t++) {
      x = w[t - 15];
      y = w[t - 2];
      var s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      var s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (t = 0; t < 64; t++) {
      var S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      var ch = (e & f) ^ (~e & g);
      var t1 = (k + S1 + ch + K[t] + w[t]) | 0;
      var S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      var maj = (a & b) ^ (a & c) ^ (b & c);
      var t2 = (S0 + maj) | 0;
      k = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
  };

  // Add bytes (a Uint8Array); may be called any number of times.
  Sha256.prototype.update = function (data) {
    var n = data.length;
    var i = 0;
    this.bytes += n;
    if (this.bufLen > 0) {
      var take = Math.min(64 - this.bufLen, n);
      this.buf.set(data.subarray(0, take), this.bufLen);
      this.bufLen += take;
      i = take;
      if (this.bufLen < 64) return this;
      this.block(this.buf, 0);
      this.bufLen = 0;
    }
    for (; i + 64 <= n; i += 64) this.block(data, i);
    if (i < n) {
      this.buf.set(data.subarray(i), 0);
      this.bufLen = n - i;
    }
    return this;
  };

  // The digest as lowercase hex. Ends the hash: do not update afterwards.
  Sha256.prototype.hex = function () {
    var bytes = this.bytes;
    var pad = new Uint8Array(((this.bufLen < 56 ? 56 : 120) - this.bufLen) + 8);
    pad[0] = 0x80;
    // Length in bits, big-endian 64-bit; exact for any size below 2^53 bits.
    var hi = Math.floor(bytes / 0x20000000);
    var lo = (bytes * 8) >>> 0;
    var end = pad.length;
    pad[end - 8] = hi >>> 24; pad[end - 7] = hi >>> 16; pad[end - 6] = hi >>> 8; pad[end - 5] = hi;
    pad[end - 4] = lo >>> 24; pad[end - 3] = lo >>> 16; pad[end - 2] = lo >>> 8; pad[end - 1] = lo;
    this.update(pad);
    var out = "";
    for (var i = 0; i < 8; i++) out += (this.h[i] >>> 0).toString(16).padStart(8, "0");
    return out;
  };

  if (typeof module !== "undefined" && module.exports) {
    module.exports = { Sha256: Sha256 };
  }
  if (typeof document === "undefined") return;

  // ---- The page ---------------------------------------------------------------------------

  var root = document.getElementById("upload");
  if (!root) return;
  root.hidden = false;

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var CSRF = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var CHUNK = Math.max(65536, parseInt(root.getAttribute("data-chunk-bytes"), 10) || 8388608);
  var MAX = parseInt(root.getAttribute("data-max-bytes"), 10) || 0;
  var HASH_SLICE = 4 * 1024 * 1024;
  var RETRY_DELAYS = [1000, 2000, 4000, 8000, 15000, 30000];
  var STORE_KEY = "reelbox.uploads.v1";

  var select = document.getElementById("upload-category");
  var input = document.getElementById("upload-files");
  var drop = document.getElementById("upload-drop");
  var list = document.getElementById("upload-list");
  var empty = document.getElementById("upload-empty");
  var earlier = document.getElementById("upload-earlier");
  var earlierList = document.getElementById("upload-earlier-list");

  var items = [];
  var running = false;
  var nextId = 1;

  // -- remembered uploads (fingerprint → {url, sha256, name, size, category, mediaId}) --

  function loadStore() {
    try {
      var v = JSON.parse(global.localStorage.getItem(STORE_KEY) || "{}");
      return v && typeof v === "object" ? v : {};
    } catch (e) {
      return {};
    }
  }
  function saveStore(s) {
    try {
      global.localStorage.setItem(STORE_KEY, JSON.stringify(s));
    } catch (e) {
      // Storage full or disabled: uploads still work, they just cannot resume after a reload.
    }
  }
  function remember(item) {
    var s = loadStore();
    s[item.fingerprint] = {
      url: item.url || null,
      sha256: item.sha256 || null,
      name: item.file.name,
      size: item.file.size,
      category: item.category,
      mediaId: item.mediaId || null,
      at: Date.now(),
    };
    saveStore(s);
  }
  function forget(fingerprint) {
    var s = loadStore();
    delete s[fingerprint];
    saveStore(s);
  }
  function fingerprintOf(file, category) {
    return [file.name, file.size, file.lastModified, category].join("|");
  }

  // -- formatting --

  function size(n) {
    if (n >= 1e9) return (n / 1e9).toFixed(2) + " GB";
    if (n >= 1e6) return (n / 1e6).toFixed(1) + " MB";
    if (n >= 1e3) return Math.round(n / 1e3) + " KB";
    return n + " bytes";
  }
  function pct(done, total) {
    return total > 0 ? Math.floor((done / total) * 100) : 100;
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function button(label, onClick) {
    var b = el("button", "button small upload-" + label.toLowerCase(), label);
    b.type = "button";
    b.addEventListener("click", onClick);
    return b;
  }

  // -- one row per file --

  function addFile(file) {
    var category = select.value;
    var fingerprint = fingerprintOf(file, category);
    for (var i = 0; i < items.length; i++) {
      if (items[i].fingerprint === fingerprint && items[i].state !== "removed") return;
    }
    var id = nextId++;
    var stored = loadStore()[fingerprint];
    var item = {
      id: id,
      file: file,
      category: category,
      categoryName: select.options[select.selectedIndex].text.trim(),
      fingerprint: fingerprint,
      url: stored && stored.url,
      sha256: stored && stored.sha256,
      mediaId: stored && stored.mediaId,
      resumed: !!(stored && stored.url),
      state: "queued",
      abort: null,
    };
    var row = el("li", "upload-item");
    row.setAttribute("data-state", "queued");
    var head = el("div", "upload-head");
    head.appendChild(el("span", "upload-name", file.name));
    head.appendChild(el("span", "upload-size", size(file.size)));
    var bar = el("progress", "upload-progress");
    bar.max = 100;
    bar.value = 0;
    bar.id = "upload-progress-" + id;
    bar.setAttribute("aria-label", "Progress of " + file.name);
    var status = el("p", "upload-status", item.resumed ? "Waiting to continue…" : "Waiting…");
    status.setAttribute("aria-live", "polite");
    var error = el("p", "upload-error");
    error.setAttribute("role", "alert");
    error.hidden = true;
    var links = el("p", "upload-links");
    links.hidden = true;
    var actions = el("div", "upload-actions");
    var pause = button("Pause", function () { pauseItem(item); });
    var resume = button("Resume", function () { resumeItem(item); });
    var remove = button("Remove", function () { removeItem(item); });
    pause.setAttribute("aria-label", "Pause " + file.name);
    resume.setAttribute("aria-label", "Resume " + file.name);
    remove.setAttribute("aria-label", "Remove " + file.name);
    actions.appendChild(pause);
    actions.appendChild(resume);
    actions.appendChild(remove);
    row.appendChild(head);
    row.appendChild(bar);
    row.appendChild(status);
    row.appendChild(error);
    row.appendChild(links);
    row.appendChild(actions);
    item.ui = { row: row, bar: bar, status: status, error: error, links: links, pause: pause, resume: resume };
    list.appendChild(row);
    items.push(item);
    if (MAX && file.size > MAX) {
      fail(item, "This file is " + size(file.size) + "; the limit is " + size(MAX) + " per file.");
    } else if (file.size === 0) {
      fail(item, "This file is empty.");
    } else {
      setState(item, "queued");
    }
    refreshEarlier();
    pump();
  }

  function setState(item, state) {
    item.state = state;
    var ui = item.ui;
    ui.row.setAttribute("data-state", state);
    var active = state === "queued" || state === "hashing" || state === "uploading";
    ui.pause.hidden = !active;
    ui.resume.hidden = !(state === "paused" || state === "error-retryable");
    if (state !== "error" && state !== "error-retryable") ui.error.hidden = true;
    empty.hidden = items.some(function (i) { return i.state !== "removed"; });
  }

  function say(item, text) {
    item.ui.status.textContent = text;
  }

  function fail(item, message, retryable) {
    setState(item, retryable ? "error-retryable" : "error");
    item.ui.error.textContent = message;
    item.ui.error.hidden = false;
    say(item, retryable ? "Stopped." : "Not uploaded.");
    refreshEarlier();
  }

  function pauseItem(item) {
    if (item.state !== "queued" && item.state !== "hashing" && item.state !== "uploading") return;
    setState(item, "paused");
    if (item.abort) item.abort.abort();
    say(item, "Paused at " + item.ui.bar.value + " %.");
  }

  function resumeItem(item) {
    if (item.state !== "paused" && item.state !== "error-retryable") return;
    setState(item, "queued");
    say(item, "Waiting to continue…");
    pump();
  }

  function removeItem(item) {
    var unfinished = item.url && item.state !== "done";
    if (unfinished && !global.confirm("Stop uploading “" + item.file.name + "” and discard what was sent?")) return;
    var was = item.state;
    setState(item, "removed");
    if (item.abort) item.abort.abort();
    item.ui.row.remove();
    forget(item.fingerprint);
    if (unfinished && was !== "error") {
      tus("DELETE", item.url, {}).catch(function () {});
    }
  }

  // -- HTTP --

  function tus(method, url, headers, body, signal) {
    var h = { "Tus-Resumable": "1.0.0" };
    if (method !== "HEAD" && method !== "GET") h["X-CSRF-Token"] = CSRF;
    for (var k in headers) h[k] = headers[k];
    return fetch(url, {
      method: method,
      headers: h,
      body: body,
      credentials: "same-origin",
      cache: "no-store",
      signal: signal,
    });
  }

  // The problem JSON's `detail`, or a sentence for the status.
  function problem(res) {
    return res.text().then(function (text) {
      try {
        var j = JSON.parse(text);
        if (j && (j.detail || j.title)) return j.detail || j.title;
      } catch (e) {
        // not JSON
      }
      return "The server answered " + res.status + ".";
    });
  }

  function HttpError(status, message) {
    this.status = status;
    this.message = message;
  }

  function sleep(ms) {
    return new Promise(function (resolve) {
      setTimeout(resolve, ms);
    });
  }

  function b64(bytes) {
    var s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s);
  }
  function b64text(text) {
    return b64(new TextEncoder().encode(text));
  }

  // Upload-Checksum for one chunk, when Web Crypto is available (secure contexts only).
  function chunkChecksum(buf) {
    if (!(global.crypto && global.crypto.subtle)) return Promise.resolve(null);
    return global.crypto.subtle.digest("SHA-256", buf).then(
      function (d) { return "sha256 " + b64(new Uint8Array(d)); },
      function () { return null; }
    );
  }

  // -- the work --

  function stillWanted(item) {
    return item.state === "hashing" || item.state === "uploading";
  }

  async function hashFile(item) {
    setState(item, "hashing");
    var file = item.file;
    var h = new Sha256();
    var shown = -1;
    for (var at = 0; at < file.size; at += HASH_SLICE) {
      if (!stillWanted(item)) return false;
      var buf = await file.slice(at, Math.min(file.size, at + HASH_SLICE)).arrayBuffer();
      h.update(new Uint8Array(buf));
      var p = pct(Math.min(file.size, at + HASH_SLICE), file.size);
      item.ui.bar.value = p;
      if (p !== shown && (p - shown >= 5 || p === 100)) {
        shown = p;
        say(item, "Hashing… " + p + " %");
      }
    }
    item.sha256 = h.hex();
    remember(item);
    return true;
  }

  async function create(item) {
    var meta = [
      "filename " + b64text(item.file.name),
      "category " + b64text(String(item.category)),
      "sha256 " + b64text(item.sha256),
    ].join(",");
    var res = await tus("POST", "/api/v1/uploads", {
      "Upload-Length": String(item.file.size),
      "Upload-Metadata": meta,
    });
    if (res.status !== 201) throw new HttpError(res.status, await problem(res));
    item.url = res.headers.get("Location");
    item.mediaId = res.headers.get("X-Media-Id");
    remember(item);
    return 0;
  }

  // The server's offset for a remembered upload, or null when it is gone (expired, cancelled).
  async function serverOffset(item) {
    var res = await tus("HEAD", item.url, {});
    if (res.status === 404 || res.status === 410) return null;
    if (!res.ok) throw new HttpError(res.status, "The server answered " + res.status + ".");
    var mid = res.headers.get("X-Media-Id");
    if (mid) item.mediaId = mid;
    return parseInt(res.headers.get("Upload-Offset"), 10) || 0;
  }

  async function send(item, offset) {
    setState(item, "uploading");
    var file = item.file;
    var started = Date.now();
    var startOffset = offset;
    var shown = -1;
    item.ui.bar.value = pct(offset, file.size);
    while (offset < file.size) {
      if (!stillWanted(item)) return false;
      var end = Math.min(file.size, offset + CHUNK);
      var buf = await file.slice(offset, end).arrayBuffer();
      var headers = {
        "Upload-Offset": String(offset),
        "Content-Type": "application/offset+octet-stream",
      };
      var sum = await chunkChecksum(buf);
      if (sum) headers["Upload-Checksum"] = sum;
      item.abort = new AbortController();
      var res = await tus("PATCH", item.url, headers, buf, item.abort.signal);
      item.abort = null;
      if (res.status === 409) {
        // Offsets disagree (another tab, or a chunk the server kept partly): ask and go on.
        offset = await serverOffset(item);
        if (offset === null) throw new HttpError(404, "The upload expired on the server.");
        continue;
      }
      if (res.status !== 204) throw new HttpError(res.status, await problem(res));
      offset = parseInt(res.headers.get("Upload-Offset"), 10) || end;
      item.status = res.headers.get("X-Media-Status") || item.status;
      var p = pct(offset, file.size);
      item.ui.bar.value = p;
      var secs = (Date.now() - started) / 1000;
      if (p !== shown && (p - shown >= 5 || p === 100) && stillWanted(item)) {
        shown = p;
        var rate = secs > 0.2 ? ", " + ((offset - startOffset) / 1e6 / secs).toFixed(1) + " MB/s" : "";
        say(item, "Uploading… " + p + " %" + rate);
      }
    }
    return true;
  }

  function finished(item) {
    setState(item, "done");
    forget(item.fingerprint);
    refreshEarlier();
    item.ui.bar.value = 100;
    say(item, item.status === "ready" ? "Uploaded." : "Uploaded; getting it ready…");
    var links = item.ui.links;
    links.textContent = "";
    var open = el("a", "", "Open “" + item.file.name + "”");
    open.href = "/media/" + encodeURIComponent(item.mediaId);
    var cat = el("a", "", "Go to " + item.categoryName);
    cat.href = "/categories/" + encodeURIComponent(item.category);
    links.appendChild(open);
    links.appendChild(document.createTextNode(" · "));
    links.appendChild(cat);
    links.hidden = false;
    item.ui.row.setAttribute("data-media-id", item.mediaId);
  }

  function retryable(e) {
    // fetch rejects with a TypeError when the network fails; 5xx and 423/429 may pass.
    if (e instanceof HttpError) return e.status >= 500 || e.status === 423 || e.status === 429;
    return !(e && e.name === "AbortError");
  }

  async function run(item) {
    var attempt = 0;
    for (;;) {
      try {
        if (!item.sha256) {
          if (!(await hashFile(item))) return;
        }
        // The bar now measures bytes the server holds, not bytes hashed.
        item.ui.bar.value = 0;
        setState(item, "uploading");
        var offset = null;
        if (item.url) {
          offset = await serverOffset(item);
          if (offset === null) {
            item.url = null;
            say(item, "The earlier upload expired on the server; starting again…");
          } else if (offset > 0) {
            say(item, "Continuing from " + size(offset) + "…");
          }
        }
        if (offset === null) offset = await create(item);
        item.ui.row.setAttribute("data-upload-url", item.url);
        item.ui.row.setAttribute("data-media-id", item.mediaId);
        if (!(await send(item, offset))) return;
        finished(item);
        return;
      } catch (e) {
        if (!stillWanted(item)) return;
        if (!retryable(e)) {
          // The server refused for good (type, size, hash, expiry): nothing left to resume.
          forget(item.fingerprint);
          fail(item, e instanceof HttpError ? e.message : String(e));
          return;
        }
        if (attempt >= RETRY_DELAYS.length) {
          fail(item, "The connection keeps failing. Check the network, then press Resume.", true);
          return;
        }
        var wait = RETRY_DELAYS[attempt++];
        say(item, "Connection lost; trying again in " + Math.round(wait / 1000) + " s…");
        await sleep(wait);
        if (!stillWanted(item)) return;
      }
    }
  }

  // One file at a time, in the order added: the link is the bottleneck, not the browser.
  async function pump() {
    if (running) return;
    running = true;
    try {
      for (;;) {
        var next = items.find(function (i) { return i.state === "queued"; });
        if (!next) break;
        await run(next);
      }
    } finally {
      running = false;
    }
  }

  // -- unfinished uploads from an earlier visit --

  function refreshEarlier() {
    var s = loadStore();
    earlierList.textContent = "";
    var shown = 0;
    Object.keys(s).forEach(function (fp) {
      var u = s[fp];
      if (!u || items.some(function (i) { return i.fingerprint === fp && i.state !== "removed"; })) return;
      var li = el("li", "upload-item");
      var head = el("div", "upload-head");
      head.appendChild(el("span", "upload-name", String(u.name)));
      head.appendChild(el("span", "upload-size", size(Number(u.size) || 0)));
      li.appendChild(head);
      var discard = button("Discard", function () {
        if (!global.confirm("Discard the unfinished upload of “" + u.name + "”?")) return;
        forget(fp);
        if (u.url) tus("DELETE", u.url, {}).catch(function () {});
        refreshEarlier();
      });
      discard.setAttribute("aria-label", "Discard " + u.name);
      li.appendChild(discard);
      earlierList.appendChild(li);
      shown++;
    });
    earlier.hidden = shown === 0;
  }

  // -- wiring --

  function addAll(files) {
    for (var i = 0; i < files.length; i++) addFile(files[i]);
  }

  input.addEventListener("change", function () {
    if (input.files && input.files.length) addAll(input.files);
    input.value = "";
  });
  ["dragenter", "dragover"].forEach(function (type) {
    drop.addEventListener(type, function (ev) {
      ev.preventDefault();
      drop.classList.add("is-dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (type) {
    drop.addEventListener(type, function () {
      drop.classList.remove("is-dragging");
    });
  });
  drop.addEventListener("drop", function (ev) {
    ev.preventDefault();
    if (ev.dataTransfer && ev.dataTransfer.files) addAll(ev.dataTransfer.files);
  });
  empty.hidden = false;
  refreshEarlier();
})(typeof window !== "undefined" ? window : globalThis);
