// Marquee offline door scanner. Verifies v2 ticket tokens on the device
// (WebCrypto Ed25519) against the event's public keys, judges them against
// the door manifest and the device's own scan log (IndexedDB), and syncs the
// log to POST /api/v1/events/{id}/checkins/sync. Works with the network cut
// once loaded: the service worker (sw.js) serves the page and these files.
(function () {
  'use strict';
  var root = document.getElementById('scanner');
  if (!root) return;
  var tenant = root.dataset.tenant;
  var events = JSON.parse(root.dataset.events || '[]');
  var csrf = (document.querySelector('meta[name=csrf-token]') || {}).content || '';
  var $ = function (id) { return document.getElementById(id); };
  var BATCH = 100; // small batches hold their tickets' locks briefly (the server takes up to 1,000)

  // ---------- IndexedDB: meta (manifest, keys, cursors) and the scan log ----------
  var dbp = new Promise(function (resolve, reject) {
    var req = indexedDB.open('marquee-scanner', 1);
    req.onupgradeneeded = function () {
      var db = req.result;
      db.createObjectStore('meta');
      var s = db.createObjectStore('scans', {keyPath: 'nonce'});
      s.createIndex('event', 'event');
    };
    req.onsuccess = function () { resolve(req.result); };
    req.onerror = function () { reject(req.error); };
  });
  function tx(store, mode, fn) {
    return dbp.then(function (db) {
      return new Promise(function (resolve, reject) {
        var t = db.transaction(store, mode), out;
        var r = fn(t.objectStore(store));
        if (r) r.onsuccess = function () { out = r.result; };
        t.oncomplete = function () { resolve(out); };
        t.onerror = function () { reject(t.error); };
      });
    });
  }
  var getMeta = function (k) { return tx('meta', 'readonly', function (s) { return s.get(k); }); };
  var putMeta = function (k, v) { return tx('meta', 'readwrite', function (s) { return s.put(v, k); }); };
  var putScan = function (v) { return tx('scans', 'readwrite', function (s) { return s.put(v); }); };
  var eventScans = function (ev) { return tx('scans', 'readonly', function (s) { return s.index('event').getAll(ev); }); };

  // ---------- bytes ----------
  function b64u(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function hex(b, from, to) {
    var s = '';
    for (var i = from; i < to; i++) s += (b[i] < 16 ? '0' : '') + b[i].toString(16);
    return s;
  }
  function uuidOf(b, off) {
    var h = hex(b, off, off + 16);
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }
  function nonce() {
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return hex(b, 0, 16);
  }

  // ---------- state ----------
  var st = {event: null, header: null, tickets: new Map(), keys: {}, local: new Map(), pending: 0, offset: 0};
  var deviceId = localStorage.getItem('marquee-scanner-device');
  if (!deviceId) { deviceId = 'web-' + nonce().slice(0, 12); localStorage.setItem('marquee-scanner-device', deviceId); }
  $('device').textContent = deviceId;
  $('gate').value = localStorage.getItem('marquee-scanner-gate') || 'Main';
  $('gate').addEventListener('change', function () { localStorage.setItem('marquee-scanner-gate', $('gate').value); });

  var sel = $('event');
  events.forEach(function (e) {
    var o = document.createElement('option');
    o.value = e.id; o.textContent = e.title + ' · ' + e.when;
    sel.appendChild(o);
  });
  var chosen = new URLSearchParams(location.search).get('event') || localStorage.getItem('marquee-scanner-event');
  if (chosen && events.some(function (e) { return e.id === chosen; })) sel.value = chosen;
  sel.addEventListener('change', function () { load(sel.value); });

  function setNet(online) {
    $('net').textContent = online ? 'online' : 'offline';
    $('net').className = 'pill ' + (online ? 'ok' : 'off');
  }
  setNet(navigator.onLine);
  window.addEventListener('online', function () { setNet(true); sync(); });
  window.addEventListener('offline', function () { setNet(false); });

  // ---------- manifest ----------
  function parseManifest(buf) {
    var b = new Uint8Array(buf);
    if (b.length < 9 || String.fromCharCode(b[0], b[1], b[2], b[3]) !== 'MQDM' || b[4] !== 1) throw new Error('not a door manifest');
    var n = new DataView(buf).getUint32(5);
    var header = JSON.parse(new TextDecoder().decode(b.subarray(9, 9 + n)));
    var recs = b.subarray(9 + n);
    return {header: header, records: recs};
  }
  function apply(records, into) {
    for (var off = 0; off + 18 <= records.length; off += 18) {
      into.set(hex(records, off, off + 16), records[off + 16] << 8 | records[off + 17]);
    }
  }
  function encode(map) {
    var out = new Uint8Array(map.size * 18), off = 0;
    map.forEach(function (v, k) {
      for (var i = 0; i < 16; i++) out[off + i] = parseInt(k.substr(i * 2, 2), 16);
      out[off + 16] = v >> 8; out[off + 17] = v & 255;
      off += 18;
    });
    return out.buffer;
  }
  function fetchManifest(ev, since) {
    var url = '/api/v1/events/' + ev + '/door-manifest' + (since ? '?since=' + encodeURIComponent(since) : '');
    return fetch(url, {credentials: 'same-origin'}).then(function (r) {
      if (!r.ok) throw new Error('manifest: HTTP ' + r.status);
      return r.arrayBuffer();
    }).then(parseManifest);
  }
  // The clock offset (server minus this device) by a round trip to the door
  // clock: the server's reading lies within the trip, so the midpoint is off
  // by at most half of it — better than the sync's own sent_at, which counts
  // the upload's transit. null when the probe fails (sent_at alone then).
  function measureOffset(ev) {
    var t0 = Date.now();
    return fetch('/api/v1/events/' + ev + '/door-clock', {credentials: 'same-origin', cache: 'no-store'}).then(function (r) {
      if (!r.ok) return null;
      return r.json().then(function (d) {
        var t1 = Date.now();
        var off = Math.round(Date.parse(d.server_time) - (t0 + t1) / 2);
        st.offset = off;
        return off;
      });
    }).catch(function () { return null; });
  }
  function fetchKeys(ev) {
    return fetch('/api/v1/events/' + ev + '/public-key', {credentials: 'same-origin'}).then(function (r) {
      if (!r.ok) throw new Error('keys: HTTP ' + r.status);
      return r.json();
    });
  }
  function importKeys(doc) {
    var out = {};
    return Promise.all((doc.keys || []).map(function (k) {
      return crypto.subtle.importKey('raw', b64u(k.public_key), {name: 'Ed25519'}, false, ['verify']).then(function (key) { out[k.key_id] = key; });
    })).then(function () { return out; });
  }
  // refresh downloads the keys and the manifest (a delta when one is held).
  function refresh(ev, full) {
    var t0 = performance.now();
    return Promise.all([getMeta('manifest:' + ev), getMeta('records:' + ev)]).then(function (held) {
      var since = !full && held[0] && held[1] ? held[0].cursor : '';
      return Promise.all([fetchManifest(ev, since), fetchKeys(ev)]).then(function (got) {
        var m = got[0];
        // A delta carries only the tickets whose rows changed, but clearing
        // at "everyone out at" changes none: when that time moved, or passed
        // since the held manifest, the held records' inside flags are stale
        // for this header, so the whole manifest is fetched again.
        if (!m.header.full && held[0] && crossesClear(held[0], m.header)) return refresh(ev, true);
        if (m.header.full || !held[1]) st.tickets = new Map();
        else if (st.tickets.size === 0) apply(new Uint8Array(held[1]), st.tickets);
        apply(m.records, st.tickets);
        st.header = m.header;
        return Promise.all([putMeta('manifest:' + ev, m.header), putMeta('records:' + ev, encode(st.tickets)), putMeta('keys:' + ev, got[1])]).then(function () {
          return importKeys(got[1]);
        }).then(function (keys) {
          st.keys = keys;
          $('manifest').textContent = st.tickets.size + ' tickets · ' + (m.header.full ? 'full' : 'delta of ' + m.header.count) + ' in ' + Math.round(performance.now() - t0) + ' ms · ' + new Date(m.header.generated_at).toLocaleTimeString();
          setNet(true);
        });
      });
    });
  }
  function crossesClear(held, cur) {
    if ((held.everyone_out_at || '') !== (cur.everyone_out_at || '')) return true;
    var out = Date.parse(cur.everyone_out_at || '');
    return !isNaN(out) && Date.parse(held.generated_at) < out && Date.parse(cur.generated_at) >= out;
  }
  function load(ev) {
    st.event = ev;
    localStorage.setItem('marquee-scanner-event', ev);
    st.local = new Map(); st.tickets = new Map();
    return Promise.all([getMeta('manifest:' + ev), getMeta('records:' + ev), getMeta('keys:' + ev), eventScans(ev)]).then(function (r) {
      if (r[1]) apply(new Uint8Array(r[1]), st.tickets);
      st.header = r[0] || null;
      (r[3] || []).sort(function (a, b) { return a.scanned_at < b.scanned_at ? -1 : 1; }).forEach(remember);
      renderLog(r[3] || []);
      var ready = r[2] ? importKeys(r[2]).then(function (k) { st.keys = k; }) : Promise.resolve();
      return ready.then(function () {
        if (r[0]) $('manifest').textContent = st.tickets.size + ' tickets · downloaded ' + new Date(r[0].generated_at).toLocaleTimeString();
        return refresh(ev, false).catch(function (e) {
          setNet(false);
          if (!r[0]) $('manifest').textContent = 'no manifest yet: ' + e.message;
        });
      });
    }).then(ready);
  }
  function ready() { root.dataset.ready = st.header ? 'yes' : 'no'; }

  // ---------- judging ----------
  // remember folds a scan of the local log into the device's own view.
  function remember(s) {
    if (s.result === 'admit') st.local.set(s.ticket, {inside: true, at: s.scanned_at, gate: s.gate});
    if (s.result === 'exited') st.local.set(s.ticket, {inside: false, exited: true, at: s.scanned_at, gate: s.gate});
  }
  function verify(token) {
    var b;
    try { b = b64u(token.trim()); } catch (e) { return Promise.resolve(null); }
    if (token.trim().length !== 164 || b.length !== 123 || b[0] !== 2) return Promise.resolve(null);
    var kid = b[1] << 8 | b[2];
    var key = st.keys[kid];
    if (!key) return Promise.resolve(null);
    var ctx = new TextEncoder().encode('marquee-ticket/2\u0000' + tenant + '\u0000');
    var msg = new Uint8Array(ctx.length + 59);
    msg.set(ctx); msg.set(b.subarray(0, 59), ctx.length);
    return crypto.subtle.verify({name: 'Ed25519'}, key, b.subarray(59), msg).then(function (ok) {
      if (!ok) return null;
      var dv = new DataView(b.buffer);
      return {kid: kid, event: uuidOf(b, 3), ticket: hex(b, 19, 35), ticketId: uuidOf(b, 19), zone: uuidOf(b, 35),
        nbf: dv.getUint32(51), exp: dv.getUint32(55)};
    }).catch(function () { return null; });
  }
  function zoneName(id) {
    var z = (st.header && st.header.zones || []).filter(function (z) { return z.id === id; })[0];
    return z ? z.name : '';
  }
  // serverNow is the server's time by this device's clock and its last
  // measured offset (0 before the first sync).
  function serverNow() { return Date.now() + (st.offset || 0); }
  // cleared: once the event's "everyone out at" time has passed, a holder
  // whose last passage came before it counts as out (the server's rule):
  // their next entry is a re-entry, their exit finds nobody inside. A
  // passage logged here is timed by this device's clock; one the manifest
  // holds happened before the manifest was generated (the server already
  // cleared the records of holders out by then).
  function cleared(h, lastAt) {
    var out = Date.parse(h.everyone_out_at || '');
    return !isNaN(out) && serverNow() >= out && lastAt < out;
  }
  function judge(c, type, gate) {
    if (c.event !== st.event) return {result: 'wrong_event'};
    var rec = st.tickets.get(c.ticket), state = rec === undefined ? 0 : rec & 255;
    var mine = st.local.get(c.ticket);
    var h = st.header || {};
    var inside = mine ? mine.inside && !cleared(h, Date.parse(mine.at) + (st.offset || 0))
      : state === 1 && !cleared(h, Date.parse(h.generated_at));
    var wasIn = mine ? true : state === 1 || state === 2;
    if (type === 'exit') return {result: inside ? 'exited' : 'not_inside'};
    if (state === 3) return {result: 'revoked'};
    var now = Date.now() / 1000;
    if (c.nbf && now < c.nbf) return {result: 'not_yet_valid'};
    if (c.exp && now >= c.exp) return {result: 'expired'};
    var g = (h.gates || []).filter(function (g) { return g.name === gate; })[0];
    if (g && g.zones.indexOf(c.zone) < 0) return {result: 'wrong_zone'};
    if (inside || (wasIn && !h.reentry)) return {result: 'already_admitted', mine: mine};
    return {result: 'admit'};
  }
  var LABEL = {admit: 'ADMIT', already_admitted: 'ALREADY', wrong_zone: 'WRONG ZONE', invalid: 'INVALID', revoked: 'REVOKED',
    wrong_event: 'INVALID', not_yet_valid: 'INVALID', expired: 'INVALID', exited: 'EXITED', not_inside: 'NOT INSIDE'};
  var DETAIL = {wrong_event: 'another event’s ticket', not_yet_valid: 'not valid yet', expired: 'expired', invalid: 'forged, damaged or not this chain’s',
    revoked: 'ticket re-issued, refunded or cancelled'};
  function show(result, detail) {
    var v = $('verdict');
    v.textContent = LABEL[result] || result.toUpperCase();
    v.className = 'verdict v-' + result;
    v.dataset.result = result;
    $('verdict-detail').textContent = detail || DETAIL[result] || '';
  }
  function scan(token) {
    var type = $('type').value, gate = $('gate').value || 'Main';
    if (!st.event) { show('invalid', 'choose an event first'); return Promise.resolve(); }
    return verify(token).then(function (c) {
      var at = new Date().toISOString();
      if (!c) {
        show('invalid');
        // Logged on the device only: a token that does not verify names no ticket.
        return putScan({nonce: nonce(), event: st.event, token: token.slice(0, 200), type: type, gate: gate, scanned_at: at, result: 'invalid', synced: true, local_only: true})
          .then(function () { return afterScan(); });
      }
      var j = judge(c, type, gate);
      var s = {nonce: nonce(), event: st.event, token: token.trim(), ticket: c.ticket, ticket_id: c.ticketId, zone: zoneName(c.zone), type: type, gate: gate, scanned_at: at, result: j.result, synced: false};
      remember(s);
      var detail = DETAIL[j.result] || '';
      if (j.result === 'already_admitted' && j.mine) detail = 'admitted here at ' + new Date(j.mine.at).toLocaleTimeString() + ', ' + j.mine.gate;
      else if (j.result === 'already_admitted') detail = 'admitted at another device (manifest)';
      else if (j.result === 'admit') detail = s.zone;
      show(j.result, detail);
      return putScan(s).then(afterScan);
    });
  }
  function afterScan() {
    return eventScans(st.event).then(function (all) {
      renderLog(all);
      if (navigator.onLine) sync();
    });
  }
  function renderLog(all) {
    var body = $('log');
    body.innerHTML = '';
    st.pending = 0;
    all.sort(function (a, b) { return a.scanned_at < b.scanned_at ? 1 : -1; }).forEach(function (s, i) {
      if (!s.synced) st.pending++;
      if (i >= 50) return;
      var tr = document.createElement('tr');
      [new Date(s.scanned_at).toLocaleTimeString(), s.type, LABEL[s.result] || s.result, s.gate, s.ticket_id ? '…' + s.ticket_id.slice(-8) : '—',
        s.local_only ? 'device only' : s.synced ? (s.server_result ? (LABEL[s.server_result] || s.server_result) + (s.conflict ? ' · conflict' : '') : 'synced') : 'pending'
      ].forEach(function (txt) { var td = document.createElement('td'); td.textContent = txt; tr.appendChild(td); });
      tr.className = 'r-' + s.result;
      body.appendChild(tr);
    });
    $('pending').textContent = st.pending;
    root.dataset.pending = st.pending;
  }

  // ---------- sync ----------
  var syncing = null;
  function sync() {
    if (syncing || !st.event) return syncing || Promise.resolve();
    var ev = st.event;
    syncing = eventScans(ev).then(function (all) {
      var todo = all.filter(function (s) { return !s.synced; });
      var batches = [];
      for (var i = 0; i < todo.length; i += BATCH) batches.push(todo.slice(i, i + BATCH));
      var summary = {admitted: 0, conflicts: 0, replayed: 0, offset: null, rules: {}};
      var measured = null;
      return batches.reduce(function (p, batch) {
        return p.then(function () {
          return batch === batches[0] ? measureOffset(ev).then(function (o) { measured = o; }) : null;
        }).then(function () {
          var body = {device_id: deviceId, sent_at: new Date().toISOString(), revocation_seq: (st.header && st.header.revocation_seq) || 0,
            scans: batch.map(function (s) { return {token: s.token, type: s.type, gate: s.gate, nonce: s.nonce, scanned_at: s.scanned_at, result: s.result}; })};
          if (measured !== null) body.clock_offset_ms = measured;
          return fetch('/api/v1/events/' + ev + '/checkins/sync', {method: 'POST', credentials: 'same-origin',
            headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf}, body: JSON.stringify(body)}).then(function (r) {
            return r.json().then(function (d) {
              if (!r.ok) throw new Error(d.detail || ('HTTP ' + r.status));
              return d;
            });
          }).then(function (d) {
            summary.admitted += d.admitted; summary.conflicts += d.conflicts; summary.replayed += d.replayed; summary.offset = d.clock_offset_ms;
            (d.unenforced || []).forEach(function (u) { summary.rules[u.rule] = (summary.rules[u.rule] || 0) + u.scans.length; });
            return Promise.all(d.scans.map(function (dec) {
              var s = batch[dec.index];
              s.synced = true; s.server_result = dec.result; s.conflict = dec.conflict || !!dec.superseded; s.checkin_id = dec.checkin_id;
              return putScan(s);
            }));
          });
        });
      }, Promise.resolve()).then(function () {
        setNet(true);
        if (batches.length) {
          var rules = Object.keys(summary.rules).map(function (r) { return r.replace(/_/g, ' ') + ' ×' + summary.rules[r]; }).join(', ');
          $('sync-status').textContent = 'synced ' + todo.length + ' at ' + new Date().toLocaleTimeString() + ': ' + summary.admitted + ' admitted, ' +
            summary.conflicts + ' conflicts, clock offset ' + summary.offset + ' ms' + (rules ? ' · not enforceable offline: ' + rules : '');
        }
        return refresh(ev, false).catch(function () {});
      });
    }).catch(function (e) {
      setNet(navigator.onLine && !/Failed to fetch|NetworkError/.test(String(e)));
      $('sync-status').textContent = 'not synced: ' + e.message;
    }).then(function () {
      syncing = null;
      return eventScans(ev).then(renderLog);
    });
    return syncing;
  }
  setInterval(function () { if (navigator.onLine && st.pending > 0) sync(); }, 30000);

  // ---------- input: manual field and camera ----------
  $('manual').addEventListener('submit', function (e) {
    e.preventDefault();
    var v = $('token').value;
    $('token').value = '';
    if (v.trim()) scan(v);
  });
  $('sync').addEventListener('click', function () { sync(); });
  $('refresh').addEventListener('click', function () { refresh(st.event, true).catch(function (e) { $('manifest').textContent = e.message; }); });
  var camera = null, last = '', lastAt = 0;
  $('camera').addEventListener('click', function () {
    if (camera) { camera.getTracks().forEach(function (t) { t.stop(); }); camera = null; $('video').hidden = true; return; }
    navigator.mediaDevices.getUserMedia({video: {facingMode: 'environment'}}).then(function (stream) {
      camera = stream;
      var video = $('video');
      video.srcObject = stream; video.hidden = false; video.play();
      var detector = 'BarcodeDetector' in window ? new window.BarcodeDetector({formats: ['qr_code']}) : null;
      var canvas = document.createElement('canvas'), ctx = canvas.getContext('2d', {willReadFrequently: true});
      var found = function (text) {
        if (text && (text !== last || Date.now() - lastAt > 3000)) { last = text; lastAt = Date.now(); scan(text); }
      };
      (function tick() {
        if (!camera) return;
        if (video.readyState >= 2) {
          if (detector) {
            detector.detect(video).then(function (codes) { if (codes[0]) found(codes[0].rawValue); }).catch(function () {});
          } else {
            canvas.width = video.videoWidth; canvas.height = video.videoHeight;
            ctx.drawImage(video, 0, 0);
            var code = window.jsQR(ctx.getImageData(0, 0, canvas.width, canvas.height).data, canvas.width, canvas.height, {inversionAttempts: 'dontInvert'});
            if (code) found(code.data);
          }
        }
        setTimeout(tick, 150);
      })();
    }).catch(function (e) { show('invalid', 'camera unavailable: ' + e.message); });
  });

  // ---------- install: the service worker ----------
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('/portal/scanner/sw.js', {scope: '/portal/scanner'}).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function () { root.dataset.sw = 'ready'; }).catch(function (e) { root.dataset.sw = 'failed: ' + e.message; });
  }
  if (sel.value) load(sel.value); else ready();
  window.marqueeScanner = {scan: scan, sync: sync, state: st};
})();
