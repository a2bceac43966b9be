// Copy buttons: <button data-copy="element-id"> copies that element's text. No inline script, so
// the CSP can forbid it.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) return;
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent).then(function () {
    button.textContent = "Copied";
  });
});

// Invitation links carry their token after '#', so it never reaches server logs; copy it into
// the form.
document.addEventListener("DOMContentLoaded", function () {
  var field = document.querySelector("[data-from-hash]");
  if (field && location.hash.length > 1) field.value = decodeURIComponent(location.hash.slice(1));
});
