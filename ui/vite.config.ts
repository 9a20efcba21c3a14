import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The admin page (issue 7): plain TypeScript and CSS, bundled into dist/ui/, which the server
 * serves at /ui/ (src/http/ui-routes.ts). `npm run build` runs this after tsc.
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/ui/',
  build: {
    outDir: fileURLToPath(new URL('../dist/ui', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // One entry and no dynamic imports: nothing to preload, so no inline polyfill either.
    modulePreload: { polyfill: false },
  },
  // `npm run ui:dev` serves the page with live reload against a server on the default port.
  server: { proxy: { '/api': 'http://127.0.0.1:8686' } },
});
