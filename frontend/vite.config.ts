import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The backend (`radrelay serve`, port 8000 by default) serves the API, DICOMweb and the live
// websocket; in development Vite serves the UI and passes those paths through.
const backend = process.env.RADRELAY_BACKEND ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: {
      "/api": { target: backend, changeOrigin: true },
      "/dicomweb": { target: backend, changeOrigin: true },
      "/ws": { target: backend, ws: true, changeOrigin: true },
    },
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
