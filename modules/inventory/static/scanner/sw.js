// The scanner's service worker: keeps the page and its files so the
// scanner reloads with the network cut. The page is fetched from the
// network when it can be (fresh CSRF token, new version) and from the cache
// when it cannot; the files are served from the cache and refreshed behind.
// API calls are not touched: the page keeps its own data in IndexedDB.
var CACHE = 'marquee-scanner-v1';
var PAGE = '/portal/scanner';
var FILES = ['/portal/scanner/scanner.js', '/portal/scanner/jsqr-1.4.0.js', '/portal/scanner/manifest.webmanifest',
  '/portal/scanner/icon-192.png', '/portal/scanner/icon-512.png', '/static/marquee.css'];

self.addEventListener('install', function (e) {
  e.waitUntil(caches.open(CACHE).then(function (c) { return c.addAll(FILES.concat([PAGE])); }).then(function () { return self.skipWaiting(); }));
});
self.addEventListener('activate', function (e) {
  e.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k !== CACHE; }).map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});
self.addEventListener('fetch', function (e) {
  var url = new URL(e.request.url);
  if (e.request.method !== 'GET' || url.origin !== location.origin) return;
  if (url.pathname === PAGE) {
    e.respondWith(fetch(e.request).then(function (res) {
      // Only a page served to a signed-in user is kept (not a login redirect).
      if (res.ok && !res.redirected) {
        var copy = res.clone();
        caches.open(CACHE).then(function (c) { c.put(PAGE, copy); });
      }
      return res;
    }).catch(function () {
      return caches.match(PAGE, {ignoreSearch: true});
    }));
    return;
  }
  if (FILES.indexOf(url.pathname) >= 0) {
    e.respondWith(caches.match(e.request, {ignoreSearch: true}).then(function (hit) {
      var net = fetch(e.request).then(function (res) {
        if (res.ok) { var copy = res.clone(); caches.open(CACHE).then(function (c) { c.put(e.request, copy); }); }
        return res;
      });
      return hit || net;
    }));
  }
});
