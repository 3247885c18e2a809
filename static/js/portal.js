// Show the message of a failed htmx request (403, 409, 500...) instead of failing silently.
document.addEventListener("htmx:responseError", function (event) {
  var box = document.getElementById("portal-messages");
  if (!box) return;
  var xhr = event.detail.xhr;
  var text = xhr.responseText || "";
  if (text.indexOf("portal-alert") !== -1 && text.length < 4000) {
    box.innerHTML = text;
  } else {
    box.textContent = box.dataset.fallback || ("Error " + xhr.status);
  }
  box.scrollIntoView({ block: "nearest" });
});
document.addEventListener("htmx:sendError", function () {
  var box = document.getElementById("portal-messages");
  if (box) box.textContent = box.dataset.offline || "The server cannot be reached.";
});
