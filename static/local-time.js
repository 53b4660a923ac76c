// Times on derp's pages in the reader's own time zone and language.
//
// The server writes each time as <time datetime="RFC 3339">UTC text</time>,
// which reads fine without JavaScript. This shows it in the browser's time
// zone, formatted for the page's language (<html lang>) by
// Intl.DateTimeFormat; the UTC text stays as the element's title.
// <time data-day> shows the day only.
(function () {
  "use strict";
  if (!window.Intl || !Intl.DateTimeFormat) return;
  var lang = document.documentElement.lang || undefined;

  function formatter(options) {
    try {
      return new Intl.DateTimeFormat(lang, options);
    } catch (e) {
      return new Intl.DateTimeFormat(undefined, options);
    }
  }

  var full = formatter({ dateStyle: "medium", timeStyle: "short" });
  var dayOnly = formatter({ dateStyle: "medium" });

  function localise() {
    var nodes = document.querySelectorAll("time[datetime]");
    for (var i = 0; i < nodes.length; i++) {
      var el = nodes[i];
      if (el.hasAttribute("data-local")) continue;
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when.getTime())) continue;
      if (!el.title) el.title = el.textContent;
      el.textContent = (el.hasAttribute("data-day") ? dayOnly : full).format(when);
      el.setAttribute("data-local", "");
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", localise);
  } else {
    localise();
  }
})();
