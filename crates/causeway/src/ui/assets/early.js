// Loaded first on every page: records every script error, failed resource load, CSP violation
// and console.error into window.__causewayErrors, so the browser tests can assert there are none.
(function () {
  "use strict";
  var errors = [];
  window.__causewayErrors = errors;
  window.addEventListener("error", function (event) {
    var target = event.target;
    if (target && target !== window && (target.src || target.href)) {
      errors.push("failed to load " + (target.src || target.href));
    } else {
      errors.push(String(event.message || event.error || "error"));
    }
  }, true);
  window.addEventListener("unhandledrejection", function (event) {
    var reason = event.reason;
    errors.push("unhandled rejection: " + (reason && reason.message ? reason.message : String(reason)));
  });
  document.addEventListener("securitypolicyviolation", function (event) {
    errors.push("content security policy blocked " + event.blockedURI + " (" + event.violatedDirective + ")");
  });
  var consoleError = console.error;
  console.error = function () {
    errors.push(Array.prototype.map.call(arguments, String).join(" "));
    return consoleError.apply(console, arguments);
  };
})();
