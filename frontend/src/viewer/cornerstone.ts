// Cornerstone3D started once per page: rendering core, tools, and the DICOM image loader whose
// every request carries the signed-in user's bearer token (fresh: accessToken() refreshes it).

import { getConfiguration, getShouldUseCPURendering, init as initCore } from "@cornerstonejs/core";
import { init as initLoader, wadors } from "@cornerstonejs/dicom-image-loader";
import {
  addTool,
  AngleTool,
  EllipticalROITool,
  init as initTools,
  LengthTool,
  PanTool,
  StackScrollTool,
  WindowLevelTool,
  ZoomTool,
} from "@cornerstonejs/tools";

import type { ImageRef } from "./metadata";

export type TokenSource = () => Promise<string>;

let started = false;
let tokenSource: TokenSource | null = null;

/** Starts Cornerstone (the first call) and points the loader at the current user's token. */
export function startCornerstone(token: TokenSource): void {
  tokenSource = token;
  if (started) return;
  started = true;
  // Few WebGL contexts: four panes at most share them, and each costs time to create (seconds
  // with a software renderer).
  const defaults = getConfiguration();
  initCore({ ...defaults, rendering: { ...defaults.rendering, webGlContextCount: 2 } });
  initLoader({
    maxWebWorkers: Math.max(1, Math.min(4, (navigator.hardwareConcurrency || 2) - 1)),
    beforeSend: async (): Promise<Record<string, string>> => {
      if (!tokenSource) return {};
      return { Authorization: `Bearer ${await tokenSource()}` };
    },
  });
  initTools();
  for (const tool of [
    WindowLevelTool,
    PanTool,
    ZoomTool,
    StackScrollTool,
    LengthTool,
    AngleTool,
    EllipticalROITool,
  ]) {
    addTool(tool);
  }
}

/** Whether volumes (MPR) can be rendered: they need WebGL, the CPU fallback draws stacks only. */
export function canRenderVolumes(): boolean {
  return !getShouldUseCPURendering();
}

/** Gives the loader each image's metadata so it needs no second request per frame. */
export function registerMetadata(images: readonly ImageRef[]): void {
  for (const image of images) {
    wadors.metaDataManager.add(image.imageId, image.metadata as never);
  }
}
