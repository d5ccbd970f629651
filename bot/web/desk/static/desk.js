/* The desk's maps (Leaflet + leaflet.markercluster, vendored): a report's place, or the
   filtered reports as clustered markers coloured by status. No tiles URL: a plain background. */
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || !window.L) { return; }
  var map = L.map(el, { scrollWheelZoom: false, maxZoom: 19 });
  if (el.dataset.tiles) {
    L.tileLayer(el.dataset.tiles, { maxZoom: 19, attribution: el.dataset.attribution || "" }).addTo(map);
  } else {
    el.classList.add("plain");
  }
  function icon(status, urgent) {
    return L.divIcon({
      className: "pin s-" + status + (urgent ? " urgent-pin" : ""),
      html: "<span></span>",
      iconSize: [18, 18],
      iconAnchor: [9, 9],
      popupAnchor: [0, -8]
    });
  }
  window.ktnDesk = { map: map, count: 0 };
  if (el.dataset.single) {
    var at = [parseFloat(el.dataset.lat), parseFloat(el.dataset.lon)];
    L.marker(at, { icon: icon(el.dataset.status, false), keyboard: true }).addTo(map);
    map.setView(at, 16);
    window.ktnDesk.count = 1;
    return;
  }
  var status = document.getElementById("map-status");
  if (status) { status.textContent = status.dataset.loading; }
  map.setView([-2.5, 118], 5);
  function popup(p) {
    var box = document.createElement("div");
    var title = document.createElement("strong");
    title.textContent = p.ticket + (p.urgent ? " !" : "");
    var lines = [p.category, p.status_label, p.created];
    box.appendChild(title);
    lines.forEach(function (text) {
      box.appendChild(document.createElement("br"));
      box.appendChild(document.createTextNode(text));
    });
    box.appendChild(document.createElement("br"));
    var link = document.createElement("a");
    link.href = p.url;
    link.textContent = status ? status.dataset.open : "→";
    box.appendChild(link);
    return box;
  }
  fetch(el.dataset.src, { credentials: "same-origin", headers: { "Accept": "application/json" } })
    .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
    .then(function (data) {
      var cluster = L.markerClusterGroup({ showCoverageOnHover: false });
      var bounds = [];
      data.points.forEach(function (p) {
        var m = L.marker([p.lat, p.lon], { icon: icon(p.status, p.urgent), keyboard: true, title: p.ticket });
        m.bindPopup(popup(p));
        cluster.addLayer(m);
        bounds.push([p.lat, p.lon]);
      });
      map.addLayer(cluster);
      if (bounds.length) { map.fitBounds(bounds, { padding: [30, 30], maxZoom: 16 }); }
      window.ktnDesk.cluster = cluster;
      window.ktnDesk.count = data.points.length;
      el.dataset.markers = String(data.points.length);
      if (status) {
        var text = data.truncated ? status.dataset.truncated : status.dataset.count;
        status.textContent = text.replace("{count}", String(data.points.length));
      }
    })
    .catch(function (err) { el.dataset.markers = "error"; el.dataset.error = String(err); });
})();
