// The API documentation page: Swagger UI over this server's OpenAPI description. Loaded as a
// file (no inline script) so that the page works under the server's Content-Security-Policy.
'use strict';

(function () {
  const SPEC_URL = '/api/openapi.json';
  const status = document.getElementById('docs-status');

  function setStatus(text, isError) {
    status.textContent = text;
    status.classList.toggle('error', Boolean(isError));
  }

  if (typeof SwaggerUIBundle === 'undefined') {
    setStatus('Swagger UI did not load (/web/node_modules/swagger-ui-dist is missing: run npm ci in web/).', true);
    return;
  }

  try {
    window.ui = SwaggerUIBundle({
      url: SPEC_URL,
      dom_id: '#swagger-ui',
      deepLinking: true,
      layout: 'BaseLayout',
      presets: [SwaggerUIBundle.presets.apis],
      // The public validator badge would load an image from another host, which the
      // page's Content-Security-Policy refuses.
      validatorUrl: null,
      tryItOutEnabled: true,
      displayRequestDuration: true,
      onComplete: () => setStatus(''),
    });
  } catch (err) {
    setStatus(`Swagger UI failed: ${(err && err.message) || err}`, true);
    return;
  }

  // Swagger UI reports a missing or broken description inside its own panel; say it here too.
  fetch(SPEC_URL, { headers: { Accept: 'application/json' } })
    .then((response) => {
      if (!response.ok) setStatus(`${SPEC_URL} answered ${response.status}: the API description is not available.`, true);
    })
    .catch(() => setStatus(`${SPEC_URL} could not be fetched.`, true));
})();
