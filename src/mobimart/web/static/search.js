// Search box niceties; every page works without them.
// Suggestions as you type: the catalogue words completing the last word, in the datalist.
(function () {
  "use strict";
  document.querySelectorAll("input[data-suggest]").forEach(function (input) {
    var list = document.getElementById(input.getAttribute("list"));
    var timer = null;
    var asked = "";
    input.addEventListener("input", function () {
      clearTimeout(timer);
      var text = input.value;
      var words = text.trim().split(/\s+/);
      if (!list || !words[words.length - 1]) { return; }
      timer = setTimeout(function () {
        if (text === asked) { return; }
        asked = text;
        fetch(input.dataset.suggest + "?q=" + encodeURIComponent(text))
          .then(function (r) { return r.ok ? r.json() : []; })
          .then(function (found) {
            var head = words.slice(0, -1).join(" ");
            list.replaceChildren.apply(list, found.map(function (word) {
              var option = document.createElement("option");
              option.value = head ? head + " " + word : word;
              return option;
            }));
          })
          .catch(function () {});
      }, 150);
    });
  });
})();
