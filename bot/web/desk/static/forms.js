/* The closure photo's box: a photo over the desk's limit is refused before anything is sent,
   so the note typed stays where it is (the server refuses it too, with a 413 page). */
(function () {
  "use strict";
  var inputs = document.querySelectorAll("input[type=file][data-max-bytes]");
  Array.prototype.forEach.call(inputs, function (input) {
    var max = parseInt(input.dataset.maxBytes, 10);
    var out = document.getElementById("photo-error");
    function fits() {
      var file = input.files && input.files[0];
      var over = Boolean(file) && max > 0 && file.size > max;
      input.setCustomValidity(over ? input.dataset.tooLarge : "");
      if (out) {
        out.textContent = over ? input.dataset.tooLarge : "";
        out.hidden = !over;
      }
      return !over;
    }
    input.addEventListener("change", fits);
    input.form.addEventListener("submit", function (event) {
      if (!fits()) {
        event.preventDefault();
        input.focus();
      }
    });
  });
}());
