// Suggests an org's slug from its name as the name is typed, as the server
// does for an empty slug (src/domain/org.rs, Slug::suggest): lower case,
// accents dropped, every other run of characters a dash, at most 63
// characters. Once the slug is edited by hand it is left alone (emptying it
// hands it back to the suggestion).
//
//   <input id="name" ...> <input id="slug" data-slug-from="name" ...>
(function () {
  "use strict";
  var SPECIAL = { "ß": "ss", "æ": "ae", "œ": "oe", "ø": "o" };

  function suggest(name) {
    var out = "";
    var text = name.trim().toLowerCase();
    for (var i = 0; i < text.length; i++) {
      var c = text[i];
      var plain = SPECIAL[c] || c.normalize("NFD").replace(/[\u0300-\u036f]/g, "");
      if (/^[a-z0-9]+$/.test(plain)) {
        out += plain;
      } else if (out && out[out.length - 1] !== "-") {
        out += "-";
      }
    }
    return out.slice(0, 63).replace(/^-+|-+$/g, "");
  }

  var slugs = document.querySelectorAll("input[data-slug-from]");
  for (var i = 0; i < slugs.length; i++) {
    (function (slug) {
      var name = document.getElementById(slug.getAttribute("data-slug-from"));
      if (!name) return;
      // A slug typed before (a form shown again after an error) is kept.
      var edited = slug.value !== "" && slug.value !== suggest(name.value);
      name.addEventListener("input", function () {
        if (!edited) slug.value = suggest(name.value);
      });
      slug.addEventListener("input", function () {
        edited = slug.value !== "";
      });
    })(slugs[i]);
  }
})();
