// reelbox player: our own fMP4 HLS over Media Source Extensions, native HLS where the browser
// has it (Safari), the progressive MP4 otherwise. Without this file the page still plays the
// progressive download with the browser's own controls. No third-party code.
(function () {
  "use strict";

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var CSRF = csrfMeta ? csrfMeta.getAttribute("content") : "";

  function api(method, url, body, type) {
    var headers = {};
    if (CSRF) headers["X-CSRF-Token"] = CSRF;
    if (type) headers["Content-Type"] = type;
    return fetch(url, { method: method, headers: headers, body: body, credentials: "same-origin" });
  }

  function problem(res) {
    return res.json().then(
      function (j) { return (j && j.detail) || "Something went wrong (" + res.status + ")."; },
      function () { return "Something went wrong (" + res.status + ")."; }
    );
  }

  function fmtTime(s) {
    if (!isFinite(s) || s < 0) s = 0;
    s = Math.floor(s);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(sec).padStart(2, "0");
  }

  function withToken(url, token) {
    if (!token) return url;
    return url + (url.indexOf("?") >= 0 ? "&" : "?") + "t=" + encodeURIComponent(token);
  }

  // ---- HLS playlists -------------------------------------------------------------------

  function attrs(line) {
    var out = {}, re = /([A-Z0-9-]+)=("[^"]*"|[^,]*)/g, m;
    while ((m = re.exec(line))) out[m[1]] = m[2].replace(/^"|"$/g, "");
    return out;
  }

  function parseMaster(text, base) {
    var lines = text.split(/\r?\n/), rungs = [];
    for (var i = 0; i < lines.length; i++) {
      if (lines[i].indexOf("#EXT-X-STREAM-INF:") !== 0) continue;
      var a = attrs(lines[i].slice(18));
      var uri = "";
      for (var j = i + 1; j < lines.length; j++) {
        if (lines[j] && lines[j][0] !== "#") { uri = lines[j].trim(); break; }
      }
      if (!uri) continue;
      var res = (a.RESOLUTION || "").split("x");
      var height = parseInt(res[1], 10) || 0;
      rungs.push({
        url: new URL(uri, base).href,
        bandwidth: parseInt(a.BANDWIDTH, 10) || 0,
        height: height,
        codecs: a.CODECS || "",
        name: height ? height + "p" : "Audio",
        segments: null,
        init: null,
      });
    }
    // By picture size, then bit rate: the rung packaged from the source as it is may declare
    // fewer bits than a smaller encoded one, and auto (the last rung that fits) must still climb to it.
    rungs.sort(function (x, y) { return x.height - y.height || x.bandwidth - y.bandwidth; });
    return rungs;
  }

  function parseMedia(text, base) {
    var lines = text.split(/\r?\n/), segs = [], init = null, t = 0, dur = null;
    for (var i = 0; i < lines.length; i++) {
      var l = lines[i].trim();
      if (!l) continue;
      if (l.indexOf("#EXT-X-MAP:") === 0) {
        var a = attrs(l.slice(11));
        if (a.URI) init = new URL(a.URI, base).href;
      } else if (l.indexOf("#EXTINF:") === 0) {
        dur = parseFloat(l.slice(8));
      } else if (l[0] !== "#" && dur !== null) {
        segs.push({ url: new URL(l, base).href, start: t, end: t + dur });
        t += dur;
        dur = null;
      }
    }
    return { init: init, segments: segs, duration: t };
  }

  function fetchText(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status + " for a playlist");
      return r.text();
    });
  }

  // ---- MSE engine ----------------------------------------------------------------------

  function MsePlayer(media, masterUrl, onRungs, onError) {
    this.media = media;
    this.masterUrl = new URL(masterUrl, location.href).href;
    this.onRungs = onRungs;
    this.onError = onError;
    this.rungs = [];
    this.current = -1;     // rung whose init is in the buffer
    this.manual = -1;      // -1 = auto
    // Media time to fetch from next. A time, not a segment index: rungs need not share segment
    // boundaries (one packaged from the source keeps the source's keyframes), so an index in
    // one rung points elsewhere in another and would leave a gap the video stalls at.
    this.nextTime = 0;
    this.busy = false;
    this.estimate = 0;     // bits per second, EWMA
    this.aheadSecs = 30;
    this.ended = false;
    this.generation = 0;   // bumps on seek/switch so stale fetches are dropped
    this.controller = null;
    this.stall = null;     // {time, since}: where playback stood still with data buffered
  }

  MsePlayer.prototype.start = function () {
    var self = this;
    var MS = window.ManagedMediaSource || window.MediaSource;
    fetchText(this.masterUrl).then(function (text) {
      self.rungs = parseMaster(text, self.masterUrl);
      if (!self.rungs.length) throw new Error("the master playlist lists no renditions");
      return Promise.all(self.rungs.map(function (r) {
        return fetchText(r.url).then(function (t) {
          var p = parseMedia(t, r.url);
          r.init = p.init; r.segments = p.segments; r.duration = p.duration;
        });
      }));
    }).then(function () {
      self.onRungs(self.rungs);
      self.ms = new MS();
      if (window.ManagedMediaSource && MS === window.ManagedMediaSource) self.media.disableRemotePlayback = true;
      self.objectUrl = URL.createObjectURL(self.ms);
      self.media.src = self.objectUrl;
      self.ms.addEventListener("sourceopen", function () { self.open(); }, { once: true });
    }).catch(function (e) { self.onError(e); });
  };

  MsePlayer.prototype.mime = function (r) {
    var audioOnly = !r.height;
    var codecs = r.codecs || (audioOnly ? "mp4a.40.2" : "avc1.42E01E,mp4a.40.2");
    return (audioOnly ? "audio/mp4" : "video/mp4") + '; codecs="' + codecs + '"';
  };

  MsePlayer.prototype.open = function () {
    var self = this, first = this.pick();
    try {
      this.sb = this.ms.addSourceBuffer(this.mime(this.rungs[first]));
    } catch (e) { this.onError(e); return; }
    this.ms.duration = this.rungs[first].duration;
    this.sb.addEventListener("updateend", function () { self.pump(); });
    this.media.addEventListener("timeupdate", function () { self.pump(); });
    this.media.addEventListener("seeking", function () { self.seek(); });
    this.watch = setInterval(function () { self.unstall(); }, 500);
    this.pump();
  };

  // A decoder can stand still on data it has (WebKit's GStreamer pipeline did, under load, after
  // the first rung switch): playing, nothing to wait for, and the time does not move. After two
  // seconds of that the position is sought again just ahead, which restarts decoding — what
  // hls.js calls a nudge. A player that waits for data is not stalled; it is fetching.
  MsePlayer.prototype.unstall = function () {
    var m = this.media;
    if (m.src !== this.objectUrl) { clearInterval(this.watch); return; }  // fell back to the MP4
    if (m.paused || m.seeking || m.ended || m.readyState >= 3 || this.bufferedAhead() < 1) {
      this.stall = null;
      return;
    }
    var t = m.currentTime, now = performance.now();
    if (!this.stall || this.stall.time !== t) { this.stall = { time: t, since: now }; return; }
    if (now - this.stall.since < 2000) return;
    this.stall = null;
    m.dataset.nudges = String((parseInt(m.dataset.nudges, 10) || 0) + 1);
    var b = m.buffered, to = t;
    for (var i = 0; i < b.length; i++) if (b.start(i) > to && b.start(i) - to < 0.5) to = b.start(i);
    m.currentTime = to + 0.1;
  };

  // The rung to fetch next: the manual choice, or the best the measured throughput sustains.
  MsePlayer.prototype.pick = function () {
    if (this.manual >= 0) return this.manual;
    if (!this.estimate) return 0;
    var best = 0;
    for (var i = 0; i < this.rungs.length; i++) {
      if (this.rungs[i].bandwidth <= this.estimate * 0.7) best = i;
    }
    return best;
  };

  // The segment of `rung` to fetch for media time `t`: the first that runs past it (by more than
  // a rounding error, so a segment ending at `t` is not fetched again).
  MsePlayer.prototype.segmentAt = function (rung, t) {
    var segs = rung.segments;
    for (var i = 0; i < segs.length; i++) if (t + 0.01 < segs[i].end) return i;
    return segs.length;
  };

  MsePlayer.prototype.bufferedAhead = function () {
    var b = this.media.buffered, t = this.media.currentTime;
    for (var i = 0; i < b.length; i++) if (t >= b.start(i) - 0.3 && t <= b.end(i)) return b.end(i) - t;
    return 0;
  };

  MsePlayer.prototype.seek = function () {
    if (!this.sb) return;
    this.generation++;
    if (this.controller) this.controller.abort();
    this.busy = false;
    var t = this.media.currentTime, b = this.media.buffered;
    for (var i = 0; i < b.length; i++) {
      if (t >= b.start(i) && t < b.end(i) - 0.5) { this.nextTime = b.end(i) - 0.1; this.pump(); return; }
    }
    this.nextTime = t;
    this.ended = false;
    this.pump();
  };

  // Switch quality now: drop what is buffered ahead and refetch it from the new rung.
  MsePlayer.prototype.setManual = function (i) {
    this.manual = i;
    if (!this.sb) return;
    var self = this, t = this.media.currentTime;
    this.generation++;
    if (this.controller) this.controller.abort();
    this.busy = true;
    var drop = function () {
      try { self.sb.remove(t + 1, Infinity); } catch (e) { self.busy = false; }
      self.nextTime = t + 1;
      self.ended = false;
      self.busy = false;
    };
    if (this.sb.updating) this.sb.addEventListener("updateend", drop, { once: true }); else drop();
  };

  MsePlayer.prototype.append = function (buf, gen) {
    var self = this;
    if (gen !== this.generation) { this.busy = false; return Promise.resolve(false); }
    return new Promise(function (resolve, reject) {
      var done = function () { resolve(true); };
      try {
        self.sb.addEventListener("updateend", done, { once: true });
        self.sb.appendBuffer(buf);
      } catch (e) {
        self.sb.removeEventListener("updateend", done);
        if (e.name === "QuotaExceededError") {
          // Free what was watched long ago, then try again once.
          var t = self.media.currentTime;
          self.sb.addEventListener("updateend", function () {
            try {
              self.sb.addEventListener("updateend", done, { once: true });
              self.sb.appendBuffer(buf);
            } catch (e2) { reject(e2); }
          }, { once: true });
          self.sb.remove(0, Math.max(0, t - 10));
        } else reject(e);
      }
    });
  };

  MsePlayer.prototype.fetchBytes = function (url, gen) {
    var self = this, started = performance.now();
    this.controller = typeof AbortController === "function" ? new AbortController() : null;
    return fetch(url, { credentials: "same-origin", signal: this.controller && this.controller.signal })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status + " for a segment");
        return r.arrayBuffer();
      })
      .then(function (buf) {
        var secs = Math.max((performance.now() - started) / 1000, 0.001);
        if (buf.byteLength > 16384 && gen === self.generation) {
          var bps = (buf.byteLength * 8) / secs;
          self.estimate = self.estimate ? 0.7 * self.estimate + 0.3 * bps : bps;
        }
        return buf;
      });
  };

  MsePlayer.prototype.pump = function () {
    if (this.busy || !this.sb || this.sb.updating || this.ms.readyState === "closed") return;
    var rungIdx = this.pick(), rung = this.rungs[rungIdx];
    var segIdx = this.segmentAt(rung, this.nextTime);
    if (segIdx >= rung.segments.length) {
      if (!this.ended && this.ms.readyState === "open") {
        this.ended = true;
        try { this.ms.endOfStream(); } catch (e) { /* already ended */ }
      }
      return;
    }
    if (this.bufferedAhead() > this.aheadSecs && !this.media.seeking) return;
    var self = this, gen = this.generation;
    this.busy = true;
    var step;
    if (rungIdx !== this.current) {
      if (this.current >= 0 && this.sb.changeType) {
        try { this.sb.changeType(this.mime(rung)); } catch (e) { /* same codec family */ }
      }
      step = this.fetchBytes(rung.init, gen).then(function (buf) { return self.append(buf, gen); })
        .then(function (ok) { if (ok) self.current = rungIdx; return false; });
    } else {
      var seg = rung.segments[segIdx];
      step = this.fetchBytes(seg.url, gen).then(function (buf) { return self.append(buf, gen); })
        .then(function (ok) { if (ok) self.nextTime = seg.end; return ok; });
    }
    step.then(function () {
      if (gen === self.generation) self.busy = false;
      self.pump();
    }).catch(function (e) {
      if (gen !== self.generation || (e && e.name === "AbortError")) return;
      self.busy = false;
      self.onError(e);
    });
  };

  MsePlayer.prototype.level = function () {
    return this.current;
  };

  // ---- the player UI -------------------------------------------------------------------

  function initPlayer(root) {
    var d = root.dataset;
    var media = root.querySelector(".player-media");
    var controls = root.querySelector(".player-controls");
    var status = root.querySelector(".player-status");
    var errorBox = root.querySelector(".player-error");
    var errorText = root.querySelector(".player-error-text");
    var retry = root.querySelector(".player-retry");
    var q = function (sel) { return root.querySelector(sel); };
    var play = q(".player-play"), seek = q(".player-seek"), time = q(".player-time");
    var mute = q(".player-mute"), volume = q(".player-volume"), speed = q(".player-speed");
    var quality = q(".player-quality"), captions = q(".player-captions"), full = q(".player-fullscreen");
    var preview = q(".player-preview"), previewImg = q(".player-preview-image"), previewTime = q(".player-preview-time");
    var engine = null, lastCaption = 0;
    var id = d.mediaId, token = d.token;

    function showError(msg) {
      errorText.textContent = msg;
      errorBox.hidden = false;
    }

    // Which way to play. Native HLS first (Safari, iOS), then our MSE engine, else the MP4.
    function startPlayback() {
      if (!d.master) return false;
      var nativeHls = media.canPlayType("application/vnd.apple.mpegurl");
      var mse = window.ManagedMediaSource || window.MediaSource;
      if (nativeHls) {
        clearSources();
        media.src = d.master;
        quality.closest("label").hidden = true;
        root.dataset.engine = "native";
        return true;
      }
      if (mse) {
        clearSources();
        engine = new MsePlayer(media, d.master, function (rungs) {
          for (var i = rungs.length - 1; i >= 0; i--) {
            var o = document.createElement("option");
            o.value = String(i);
            o.textContent = rungs[i].name;
            quality.appendChild(o);
          }
        }, function (e) {
          // Our engine failed: fall back to the progressive file if there is one.
          if (d.download) {
            engine = null;
            media.src = d.download;
            root.dataset.engine = "progressive";
            quality.closest("label").hidden = true;
          } else showError("The video could not be played: " + (e && e.message ? e.message : e));
        });
        engine.start();
        root.dataset.engine = "mse";
        return true;
      }
      return false;
    }

    // Removing a <source> does not stop a load that already chose it: Firefox went on fetching
    // the MP4 once `preload` changed, and its `loadedmetadata` took the resume seek meant for
    // our stream. load() with no source left aborts that selection.
    function clearSources() {
      var s = media.querySelectorAll("source");
      for (var i = 0; i < s.length; i++) s[i].remove();
      media.removeAttribute("src");
      media.load();
    }

    if (!startPlayback()) {
      root.dataset.engine = "progressive";
      quality.closest("label").hidden = true;
      if (d.download && !media.querySelector("source")) media.src = d.download;
    }
    media.preload = "metadata";
    if (media.load && root.dataset.engine === "progressive") media.load();

    // Our controls replace the browser's.
    media.controls = false;
    controls.hidden = false;

    // A pause made while a seek is still under way must hold. WebKitGTK does not keep it: when
    // the seek completes its GStreamer pipeline returns to the state it had before the seek
    // (playing) and the element follows, firing `play` though nobody asked. Until that seek
    // ends, such a `play` is undone.
    var pausedInSeek = false;
    function togglePlay() {
      if (media.paused || media.ended) {
        pausedInSeek = false;
        var p = media.play();
        if (p && p.catch) p.catch(function () { /* autoplay policy: the person presses again */ });
      } else {
        pausedInSeek = media.seeking;
        media.pause();
      }
    }
    media.addEventListener("play", function () {
      if (pausedInSeek) media.pause();
    });
    media.addEventListener("seeked", function () {
      if (pausedInSeek && !media.paused) media.pause();
      pausedInSeek = false;
    });
    function skip(s) {
      var dur = isFinite(media.duration) ? media.duration : Infinity;
      media.currentTime = Math.max(0, Math.min(dur, media.currentTime + s));
    }
    function setVolume(v) {
      media.volume = Math.max(0, Math.min(1, v));
      media.muted = media.volume === 0;
    }
    function chooseCaption(value) {
      for (var i = 0; i < media.textTracks.length; i++) {
        media.textTracks[i].mode = String(i) === value ? "showing" : "hidden";
      }
      if (value !== "") lastCaption = parseInt(value, 10);
      captions.value = value;
    }
    function toggleFull() {
      if (document.fullscreenElement) document.exitFullscreen();
      else if (root.requestFullscreen) root.requestFullscreen();
      else if (media.webkitEnterFullscreen) media.webkitEnterFullscreen();
    }

    play.addEventListener("click", togglePlay);
    media.addEventListener("click", togglePlay);
    q(".player-back").addEventListener("click", function () { skip(-10); });
    q(".player-forward").addEventListener("click", function () { skip(10); });
    mute.addEventListener("click", function () { media.muted = !media.muted; });
    volume.addEventListener("input", function () { setVolume(parseFloat(volume.value)); });
    speed.addEventListener("change", function () { media.playbackRate = parseFloat(speed.value); });
    captions.addEventListener("change", function () { chooseCaption(captions.value); });
    quality.addEventListener("change", function () {
      if (engine) engine.setManual(quality.value === "auto" ? -1 : parseInt(quality.value, 10));
    });
    if (full) full.addEventListener("click", toggleFull);
    seek.addEventListener("input", function () { media.currentTime = parseFloat(seek.value); });

    function sync() {
      var paused = media.paused || media.ended;
      play.setAttribute("aria-label", paused ? "Play" : "Pause");
      play.title = paused ? "Play (k)" : "Pause (k)";
      play.firstElementChild.textContent = paused ? "▶" : "❚❚";
      root.classList.toggle("is-playing", !paused);
    }
    media.addEventListener("play", sync);
    media.addEventListener("pause", sync);
    media.addEventListener("ended", sync);
    media.addEventListener("timeupdate", function () {
      if (document.activeElement !== seek) seek.value = String(media.currentTime);
      time.textContent = fmtTime(media.currentTime) + " / " + fmtTime(media.duration);
    });
    media.addEventListener("durationchange", function () {
      if (isFinite(media.duration)) seek.max = String(media.duration);
      time.textContent = fmtTime(media.currentTime) + " / " + fmtTime(media.duration);
    });
    media.addEventListener("volumechange", function () {
      mute.setAttribute("aria-label", media.muted ? "Unmute" : "Mute");
      mute.textContent = media.muted ? "🔇" : "🔊";
      volume.value = String(media.muted ? 0 : media.volume);
    });
    media.addEventListener("error", function () {
      if (root.dataset.engine !== "mse") showError("The video could not be played in this browser. Try the download link.");
    });

    // Captions load (mode "hidden") so a choice shows at once; none shows until chosen.
    for (var i = 0; i < media.textTracks.length; i++) media.textTracks[i].mode = "hidden";
    if (!media.textTracks.length) captions.closest("label").hidden = true;

    // Keyboard: anywhere on the page, except while typing or in a menu.
    document.addEventListener("keydown", function (e) {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      var t = e.target, tag = t && t.tagName;
      if (tag === "INPUT" && t !== seek && t !== volume) return;
      if (tag === "TEXTAREA" || tag === "SELECT" || (t && t.isContentEditable)) return;
      var k = e.key;
      if (tag === "BUTTON" && (k === " " || k === "Enter")) return;
      if ((tag === "INPUT") && (k === "ArrowLeft" || k === "ArrowRight" || k === "ArrowUp" || k === "ArrowDown")) return;
      var done = true;
      switch (k) {
        case " ": case "k": case "K": togglePlay(); break;
        case "j": case "J": skip(-10); break;
        case "l": case "L": skip(10); break;
        case "ArrowLeft": skip(-5); break;
        case "ArrowRight": skip(5); break;
        case "ArrowUp": setVolume(media.volume + 0.1); break;
        case "ArrowDown": setVolume(media.volume - 0.1); break;
        case "f": case "F": if (full) toggleFull(); break;
        case "m": case "M": media.muted = !media.muted; break;
        case "c": case "C":
          if (media.textTracks.length) chooseCaption(captions.value === "" ? String(lastCaption) : "");
          break;
        default: done = false;
      }
      if (done) e.preventDefault();
    });

    // Resume where this person stopped.
    var resume = parseFloat(d.resume) || 0;
    var localKey = "reelbox:position:" + id;
    if (!resume && window.localStorage) resume = parseFloat(localStorage.getItem(localKey)) || 0;
    media.addEventListener("loadedmetadata", function () {
      if (resume > 5 && (!isFinite(media.duration) || resume < media.duration - 5)) media.currentTime = resume;
      resume = 0;
    }, { once: true });
    var lastSaved = -1;
    function savePosition() {
      var t = media.ended ? 0 : media.currentTime;
      if (Math.abs(t - lastSaved) < 2) return;
      lastSaved = t;
      try { if (window.localStorage) localStorage.setItem(localKey, String(t)); } catch (e) { /* private mode */ }
      if (d.savePosition === "true") {
        var headers = { "Content-Type": "application/json" };
        if (CSRF) headers["X-CSRF-Token"] = CSRF;
        fetch("/api/v1/media/" + id + "/position", {
          method: "PUT", headers: headers, credentials: "same-origin", keepalive: true,
          body: JSON.stringify({ seconds: t }),
        }).catch(function () { /* offline: the local copy stays */ });
      }
    }
    setInterval(function () { if (!media.paused) savePosition(); }, 10000);
    media.addEventListener("pause", savePosition);
    media.addEventListener("ended", savePosition);
    window.addEventListener("pagehide", savePosition);

    // Thumbnails over the seek bar.
    if (d.sprite) {
      fetchText(d.sprite).then(function (text) {
        var cues = [], blocks = text.split(/\r?\n\r?\n/);
        blocks.forEach(function (b) {
          var m = /([\d:.]+)\s+-->\s+([\d:.]+)\s*\n\s*(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)/.exec(b);
          if (!m) return;
          var secs = function (s) {
            return s.split(":").reduce(function (acc, x) { return acc * 60 + parseFloat(x); }, 0);
          };
          cues.push({
            start: secs(m[1]), end: secs(m[2]), url: withToken(new URL(m[3], new URL(d.sprite, location.href)).href.split("?")[0], token),
            x: +m[4], y: +m[5], w: +m[6], h: +m[7],
          });
        });
        if (!cues.length) return;
        seek.addEventListener("mousemove", function (e) {
          var r = seek.getBoundingClientRect();
          var frac = Math.max(0, Math.min(1, (e.clientX - r.left) / r.width));
          var at = frac * (isFinite(media.duration) ? media.duration : 0);
          var c = cues.find(function (c) { return at >= c.start && at < c.end; }) || cues[cues.length - 1];
          previewImg.style.width = c.w + "px";
          previewImg.style.height = c.h + "px";
          previewImg.style.backgroundImage = 'url("' + c.url + '")';
          previewImg.style.backgroundPosition = -c.x + "px " + -c.y + "px";
          previewTime.textContent = fmtTime(at);
          preview.style.left = (e.clientX - r.left + seek.offsetLeft) + "px";
          preview.hidden = false;
        });
        seek.addEventListener("mouseleave", function () { preview.hidden = true; });
      }).catch(function () { /* previews are optional */ });
    }

    // Live progress while the transcoder works; reload the player when it becomes playable.
    if (d.poll === "true") {
      var wasPlayable = !!d.master;
      var poll = function () {
        fetch("/api/v1/media/" + id, { credentials: "same-origin" }).then(function (r) {
          if (!r.ok) return null;
          return r.json();
        }).then(function (j) {
          if (!j || typeof j.playable !== "boolean") return; // nothing to follow
          if (j.playable && !wasPlayable) { location.reload(); return; }
          if (j.error) {
            if (wasPlayable) {
              // It plays already; say why the other qualities are missing.
              status.textContent = "Some qualities could not be prepared: " + j.error;
              status.hidden = false;
              if (retry && (j.transcode_state || j.state) === "failed") { errorText.textContent = ""; errorBox.hidden = false; }
            } else {
              status.hidden = true;
              showError(j.error);
            }
            return;
          }
          errorBox.hidden = true;
          var state = j.transcode_state || j.state;
          var busy = state === "queued" || state === "running";
          if (busy) {
            var left = j.eta_seconds ? " · about " + (j.eta_seconds < 90 ? Math.max(1, Math.round(j.eta_seconds)) + " s" : Math.round(j.eta_seconds / 60) + " min") + " left" : "";
            status.textContent = (wasPlayable ? "Preparing more qualities: " : "Preparing this video: ") + (j.progress || 0) + "%" + left;
            status.hidden = false;
            setTimeout(poll, 2000);
          } else {
            status.hidden = wasPlayable;
          }
        }).catch(function () { setTimeout(poll, 5000); });
      };
      poll();
      if (retry) {
        retry.addEventListener("click", function () {
          retry.disabled = true;
          api("POST", "/api/v1/media/" + id + "/retry").then(function (r) {
            retry.disabled = false;
            if (!r.ok) return problem(r).then(showError);
            errorBox.hidden = true;
            status.textContent = "Trying again…";
            status.hidden = false;
            setTimeout(poll, 1000);
          });
        });
      }
    }
  }

  // ---- caption management and the embed code --------------------------------------------

  function initCaptionManager() {
    var box = document.getElementById("captions");
    if (!box) return;
    var id = box.dataset.mediaId;
    var form = box.querySelector(".caption-upload");
    var err = box.querySelector(".caption-upload-error");
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      err.hidden = true;
      var file = form.querySelector('input[type="file"]').files[0];
      var lang = form.querySelector('input[name="lang"]').value.trim();
      var label = form.querySelector('input[name="label"]').value.trim();
      if (!file) return;
      var url = "/api/v1/media/" + id + "/captions?lang=" + encodeURIComponent(lang) +
        (label ? "&label=" + encodeURIComponent(label) : "");
      file.arrayBuffer().then(function (buf) {
        return api("POST", url, buf, "text/plain; charset=utf-8");
      }).then(function (r) {
        if (r.status === 201) { location.reload(); return; }
        return problem(r).then(function (m) { err.textContent = m; err.hidden = false; });
      });
    });
    box.querySelectorAll(".caption-remove").forEach(function (b) {
      b.addEventListener("click", function () {
        var lang = b.dataset.lang;
        if (!window.confirm("Remove the " + lang + " captions from this item? This cannot be undone.")) return;
        api("DELETE", "/api/v1/media/" + id + "/captions/" + encodeURIComponent(lang)).then(function (r) {
          if (r.status === 204) location.reload();
          else problem(r).then(function (m) { err.textContent = m; err.hidden = false; });
        });
      });
    });
  }

  function initEmbedCopy() {
    var b = document.querySelector(".embed-copy");
    if (!b) return;
    var text = document.getElementById("embed-code-text"), said = document.querySelector(".embed-copied");
    b.addEventListener("click", function () {
      text.select();
      var ok = function () { said.textContent = "Copied."; };
      if (navigator.clipboard) navigator.clipboard.writeText(text.value).then(ok, function () { document.execCommand("copy"); ok(); });
      else { document.execCommand("copy"); ok(); }
    });
  }

  var root = document.getElementById("player");
  if (root) initPlayer(root);
  initCaptionManager();
  initEmbedCopy();
})();
