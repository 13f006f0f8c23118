import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The backend (`radrelay serve`, port 8000 by default) serves the API, DICOMweb and the live
// websocket; in development Vite serves the UI and passes those paths through.
const backend = process.env.RADRELAY_BACKEND ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  resolve: {
    // vtk.js (under Cornerstone) imports xmlbuilder2, whose main entry needs Node's `events`;
    // its own browser build has everything in one file.
    alias: [{ find: /^xmlbuilder2$/, replacement: "xmlbuilder2/lib/xmlbuilder2.min.js" }],
  },
  server: {
    proxy: {
      "/api": { target: backend, changeOrigin: true },
      "/dicomweb": { target: backend, changeOrigin: true },
      "/ws": { target: backend, ws: true, changeOrigin: true },
    },
  },
  // The DICOM image loader starts its decoders as module workers and fetches the codecs' wasm by
  // URL: pre-bundling would move those files away from the URLs it computes.
  optimizeDeps: {
    exclude: ["@cornerstonejs/dicom-image-loader"],
    include: ["dicom-parser"],
  },
  worker: {
    format: "es",
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: true,
  },
  test: {
    environment: "node",
    include: ["src/**/*.test.ts"],
  },
});
