// The reading room's image viewer on Cornerstone3D: series thumbnails, 1x1/1x2/2x2 layouts,
// stack scrolling, window/level, zoom/pan, measurements, cine, MPR for CT volumes, and a prior
// study beside the current one with synchronised scrolling. What it gives the report editor goes
// through ViewerProps (types.ts) only. Loaded on demand by Viewer.tsx (Cornerstone is large).

import {
  Enums as CoreEnums,
  eventTarget,
  getRenderingEngine,
  imageLoader,
  imageLoadPoolManager,
  RenderingEngine,
  setVolumesForViewports,
  StackViewport,
  VolumeViewport,
  volumeLoader,
  type Types as CoreTypes,
  utilities as coreUtilities,
} from "@cornerstonejs/core";
import {
  annotation as annotations,
  Enums as ToolEnums,
  ToolGroupManager,
} from "@cornerstonejs/tools";
import { useCallback, useEffect, useId, useMemo, useRef, useState } from "react";

import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import type { MessageKey } from "../i18n/messages";
import { useSession } from "../session";
import { canRenderVolumes, registerMetadata, startCornerstone } from "./cornerstone";
import { imagesOf, studySeries, thumbnailUrl } from "./dicomweb";
import {
  actionForKey,
  clampIndex,
  SHORTCUTS,
  keyLabel,
  shortcutFor,
  type ToolName,
  type ViewerAction,
} from "./keys";
import { LAYOUTS, layoutById, seriesForCells, cellCount, type LayoutId } from "./layout";
import { toMeasurement, type MeasuredStats, type MeasurementKind } from "./measure";
import { canReformat, TAG, text, type ImageRef, type SeriesInfo } from "./metadata";
import { PRESETS, presetById, voiRange, windowOf } from "./presets";
import type { KeyImage, Measurement, ViewerProps } from "./types";
import "./viewer.css";

type PaneKind = "stack" | "axial" | "sagittal" | "coronal";

interface Pane {
  id: string;
  kind: PaneKind;
  studyUid: string;
  seriesUid: string;
  /** The prior study's pane, shown beside the current one. */
  prior: boolean;
}

type MainState = "loading" | "first-image" | "loaded" | "error";

interface MainStatus {
  state: MainState;
  index: number;
  count: number;
}

interface ListedMeasurement {
  uid: string;
  measurement: Measurement;
}

// Cornerstone's tool names (their classes' static toolName, which its types leave untyped).
const TOOL_NAMES: Record<ToolName, string> = {
  windowLevel: "WindowLevel",
  pan: "Pan",
  zoom: "Zoom",
  scroll: "StackScroll",
  length: "Length",
  angle: "Angle",
  ellipse: "EllipticalROI",
};

const KIND_OF_TOOL: Partial<Record<string, MeasurementKind>> = {
  Length: "length",
  Angle: "angle",
  EllipticalROI: "ellipse",
};

const TOOLS: ToolName[] = ["windowLevel", "pan", "zoom", "scroll", "length", "angle", "ellipse"];
const CINE_RATES = [5, 10, 15, 20, 30];
const { MouseBindings } = ToolEnums;

/** Sets every tool's mouse bindings: the chosen tool on the left button, pan on the middle, zoom
 * on the right, scrolling on the wheel; the measurement tools stay passive (drawn, editable). */
function bindTools(groupId: string, active: ToolName): void {
  const group = ToolGroupManager.getToolGroup(groupId);
  if (!group) return;
  for (const tool of TOOLS) {
    const name = TOOL_NAMES[tool];
    const bindings: { mouseButton: ToolEnums.MouseBindings }[] = [];
    if (tool === active) bindings.push({ mouseButton: MouseBindings.Primary });
    if (tool === "pan") bindings.push({ mouseButton: MouseBindings.Auxiliary });
    if (tool === "zoom") bindings.push({ mouseButton: MouseBindings.Secondary });
    if (tool === "scroll") bindings.push({ mouseButton: MouseBindings.Wheel });
    group.setToolPassive(name, { removeAllBindings: true });
    if (bindings.length > 0) group.setToolActive(name, { bindings });
  }
}

function sameImage(a: KeyImage, b: { sopInstanceUid: string; frame: number | null }): boolean {
  return a.sopInstanceUid === b.sopInstanceUid && a.frame === b.frame;
}

function SeriesThumbnail({
  studyUid,
  series,
  selected,
  onSelect,
}: {
  studyUid: string;
  series: SeriesInfo;
  selected: boolean;
  onSelect: () => void;
}) {
  const { t } = useI18n();
  const { client } = useSession();
  const [url, setUrl] = useState<string | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    let made: string | null = null;
    thumbnailUrl(client, studyUid, series.seriesUid, controller.signal).then(
      (u) => {
        made = u;
        setUrl(u);
      },
      () => {
        // No thumbnail (an SR, a failed render): the text alone names the series.
      },
    );
    return () => {
      controller.abort();
      if (made) URL.revokeObjectURL(made);
    };
  }, [client, studyUid, series.seriesUid]);

  const label = t("viewer.series.label", {
    number: series.number ?? "—",
    modality: series.modality,
    description: series.description || t("viewer.series.noDescription"),
  });
  return (
    <li>
      <button
        type="button"
        className="viewer-thumb"
        aria-pressed={selected}
        onClick={onSelect}
        title={label}
      >
        {url ? (
          <img src={url} alt="" width={96} height={96} />
        ) : (
          <span className="viewer-thumb-empty" aria-hidden="true" />
        )}
        <span className="viewer-thumb-text">{label}</span>
        <span className="viewer-thumb-count">
          {t("viewer.series.images", { n: series.instances ?? "?" })}
        </span>
      </button>
    </li>
  );
}

export default function ViewerCore({
  studyUid,
  priors = [],
  onMeasurement,
  onKeyImage,
  keyImages = [],
}: ViewerProps) {
  const { t, lang } = useI18n();
  const { client } = useSession();
  const uid = useId().replace(/[^a-zA-Z0-9]/g, "");
  const engineId = `radrelay-engine-${uid}`;
  const groupId = `radrelay-tools-${uid}`;

  const [found, setFound] = useState<{ studyUid: string; series: SeriesInfo[] } | null>(null);
  const [priorFound, setPriorFound] = useState<{ studyUid: string; series: SeriesInfo[] } | null>(
    null,
  );
  const [error, setError] = useState<{ studyUid: string; text: string } | null>(null);
  const [selected, setSelected] = useState(0);
  const [layout, setLayout] = useState<LayoutId>("1x1");
  const [mpr, setMpr] = useState(false);
  const [priorUid, setPriorUid] = useState<string | null>(null);
  const [syncScroll, setSyncScroll] = useState(true);
  const [tool, setTool] = useState<ToolName>("windowLevel");
  const [statusOf, setStatusOf] = useState<MainStatus & { key: string }>({
    key: "",
    state: "loading",
    index: 0,
    count: 0,
  });
  const [windowFor, setWindowFor] = useState<{ key: string; text: string } | null>(null);
  const [measurements, setMeasurements] = useState<ListedMeasurement[]>([]);
  const [chosenMeasurement, setChosenMeasurement] = useState<string | null>(null);
  const [cine, setCine] = useState(false);
  const [fps, setFps] = useState(10);
  const [help, setHelp] = useState(false);
  const [mainImages, setMainImages] = useState<ImageRef[]>([]);
  // Marks made here, over the report's keyImages (which the page may or may not pass back).
  const [ownMarks, setOwnMarks] = useState<{ image: KeyImage; marked: boolean }[]>([]);
  const [reformatOk, setReformatOk] = useState(false);
  const [announce, setAnnounce] = useState("");

  const paneEls = useRef(new Map<string, HTMLDivElement>());
  const imagesByPane = useRef(new Map<string, ImageRef[]>());
  const imageById = useRef(new Map<string, ImageRef>());
  const activePane = useRef<string>("");
  const firstImageMarked = useRef(false);
  const syncing = useRef(false);
  const syncRef = useRef(syncScroll);

  useEffect(() => {
    syncRef.current = syncScroll;
  }, [syncScroll]);

  // Cornerstone, once per page, with this user's token for every frame request.
  useMemo(() => {
    startCornerstone(() => client.accessToken());
  }, [client]);

  useEffect(() => {
    const controller = new AbortController();
    studySeries(client, studyUid).then(
      (list) => {
        if (controller.signal.aborted) return;
        setFound({ studyUid, series: list });
        setSelected(0);
      },
      (e: unknown) => {
        if (!controller.signal.aborted) setError({ studyUid, text: errorText(e, t) });
      },
    );
    return () => {
      controller.abort();
    };
  }, [client, studyUid, t]);

  useEffect(() => {
    if (!priorUid) return;
    const controller = new AbortController();
    studySeries(client, priorUid).then(
      (list) => {
        if (!controller.signal.aborted) setPriorFound({ studyUid: priorUid, series: list });
      },
      (e: unknown) => {
        if (!controller.signal.aborted) setError({ studyUid, text: errorText(e, t) });
      },
    );
    return () => {
      controller.abort();
    };
  }, [client, priorUid, studyUid, t]);

  const series = found?.studyUid === studyUid ? found.series : null;
  const priorSeries = priorUid && priorFound?.studyUid === priorUid ? priorFound.series : null;
  const errorShown = error?.studyUid === studyUid ? error.text : null;

  const current = series?.[selected];

  const panes: Pane[] = useMemo(() => {
    if (!series || !current) return [];
    if (mpr) {
      return (["axial", "sagittal", "coronal"] as const).map((kind) => ({
        id: kind,
        kind,
        studyUid,
        seriesUid: current.seriesUid,
        prior: false,
      }));
    }
    if (priorUid && priorSeries && priorSeries.length > 0) {
      const match = priorSeries.find((s) => s.modality === current.modality) ?? priorSeries[0];
      const out: Pane[] = [
        { id: "main", kind: "stack", studyUid, seriesUid: current.seriesUid, prior: false },
      ];
      if (match) {
        out.push({
          id: "prior",
          kind: "stack",
          studyUid: priorUid,
          seriesUid: match.seriesUid,
          prior: true,
        });
      }
      return out;
    }
    const cells = cellCount(layoutById(layout));
    return seriesForCells(series, selected, cells).map((s, i) => ({
      id: i === 0 ? "main" : `pane${i}`,
      kind: "stack",
      studyUid,
      seriesUid: s.seriesUid,
      prior: false,
    }));
  }, [series, current, mpr, priorUid, priorSeries, layout, selected, studyUid]);
  const panesKey = JSON.stringify(panes);
  const windowText = windowFor?.key === panesKey ? windowFor.text : "";
  // The main pane's render signals belong to the panes they were reported for.
  const status: MainStatus =
    statusOf.key === panesKey ? statusOf : { state: "loading", index: 0, count: 0 };
  const setStatus = useCallback(
    (key: string, update: (s: MainStatus) => MainStatus) => {
      setStatusOf((old) => {
        const base: MainStatus =
          old.key === key ? old : { state: "loading", index: 0, count: 0 };
        return { ...update(base), key };
      });
    },
    [],
  );

  const viewportOf = useCallback(
    (paneId: string): CoreTypes.IViewport | undefined => {
      const engine = getRenderingEngine(engineId);
      return engine?.getViewport(paneId);
    },
    [engineId],
  );

  // The rendering engine and the tool group live as long as the viewer.
  useEffect(() => {
    const engine = new RenderingEngine(engineId);
    const group = ToolGroupManager.createToolGroup(groupId);
    if (group) {
      for (const name of Object.values(TOOL_NAMES)) group.addTool(name);
    }
    const onResize = () => {
      engine.resize(true, true);
    };
    window.addEventListener("resize", onResize);
    return () => {
      window.removeEventListener("resize", onResize);
      // Measurements are this viewer's: the next study opened on the page starts without them.
      annotations.state.removeAllAnnotations();
      ToolGroupManager.destroyToolGroup(groupId);
      engine.destroy();
    };
  }, [engineId, groupId]);

  useEffect(() => {
    bindTools(groupId, tool);
  }, [groupId, tool, panesKey]);

  // The measurements list, rebuilt from Cornerstone's annotation state when it changes.
  const words = useMemo(
    () => ({
      mean: t("viewer.measure.mean"),
      area: t("viewer.measure.area"),
      locale: lang,
    }),
    [t, lang],
  );

  // Annotations drawn to the end (ANNOTATION_COMPLETED), by UID.
  const completed = useRef(new Set<string>());
  const setMeasurementsFromState = useCallback(() => {
    const listed: ListedMeasurement[] = [];
    for (const a of annotations.state.getAllAnnotations()) {
      const kind = a.metadata ? KIND_OF_TOOL[a.metadata.toolName] : undefined;
      const imageId = a.metadata?.referencedImageId;
      const uid = a.annotationUID;
      // One still being drawn is left out: its values change until the mouse is let go, and
      // "To report" must send what the reader measured, not a moment of the drag. Nor one
      // whose handles moved since its values were last worked out: Cornerstone works them out
      // throttled, on a later render, and says so with ANNOTATION_MODIFIED (StatsUpdated).
      if (!kind || !uid || !completed.current.has(uid) || a.invalidated) continue;
      const image = imageId ? imageById.current.get(imageId) : undefined;
      const stats = Object.values(
        (a.data as { cachedStats?: Record<string, Record<string, unknown>> }).cachedStats ?? {},
      )[0];
      if (!stats) continue;
      const num = (k: string) => (typeof stats[k] === "number" ? stats[k] : null);
      const str = (k: string) => (typeof stats[k] === "string" ? stats[k] : null);
      const measured: MeasuredStats = {
        length: num("length"),
        lengthUnit: str("unit"),
        angle: num("angle"),
        mean: num("mean"),
        stdDev: num("stdDev"),
        area: num("area"),
        areaUnit: str("areaUnit"),
        modalityUnit: str("modalityUnit"),
      };
      const where = {
        studyUid: image ? studyOfImageId(image.imageId) : studyUid,
        seriesUid: image ? seriesOfImageId(image.imageId) : "",
        sopInstanceUid: image?.sopInstanceUid ?? "",
        frame: image?.frame ?? null,
      };
      const measurement = toMeasurement(kind, measured, where, words);
      if (measurement) listed.push({ uid, measurement });
    }
    setMeasurements((old) => (JSON.stringify(old) === JSON.stringify(listed) ? old : listed));
  }, [studyUid, words]);

  // Viewports for the panes, then their images.
  useEffect(() => {
    if (panes.length === 0) return;
    const engine = getRenderingEngine(engineId);
    const group = ToolGroupManager.getToolGroup(groupId);
    if (!engine || !group) return;
    const key = panesKey;
    let cancelled = false;
    // A function, not the flag: the checks after each await must read it fresh.
    const stopped = () => cancelled;
    const inputs: CoreTypes.PublicViewportInput[] = [];
    for (const pane of panes) {
      const element = paneEls.current.get(pane.id);
      if (!element) continue;
      if (pane.kind === "stack") {
        inputs.push({ viewportId: pane.id, type: CoreEnums.ViewportType.STACK, element });
      } else {
        const orientation = {
          axial: CoreEnums.OrientationAxis.AXIAL,
          sagittal: CoreEnums.OrientationAxis.SAGITTAL,
          coronal: CoreEnums.OrientationAxis.CORONAL,
        }[pane.kind];
        inputs.push({
          viewportId: pane.id,
          type: CoreEnums.ViewportType.ORTHOGRAPHIC,
          element,
          defaultOptions: { orientation },
        });
      }
    }
    engine.setViewports(inputs);
    for (const input of inputs) group.addViewport(input.viewportId, engineId);
    activePane.current = panes[0]?.id ?? "";
    imagesByPane.current.clear();
    firstImageMarked.current = false;

    // Every image of a series fetched ahead of scrolling; for the main pane, the moment the
    // whole stack is in memory is the render signal "loaded".
    const prefetch = (ids: string[], main: boolean) => {
      let done = 0;
      const finished = () => {
        done++;
        if (done === ids.length && main && !stopped()) {
          performance.mark("radrelay.viewer.stack-loaded");
          setStatus(key, (s) => ({ ...s, state: "loaded" }));
        }
      };
      ids.forEach((imageId, i) => {
        imageLoadPoolManager.addRequest(
          () =>
            imageLoader
              .loadAndCacheImage(imageId, {
                priority: 5,
                requestType: CoreEnums.RequestType.Prefetch,
              })
              .then(finished, finished),
          CoreEnums.RequestType.Prefetch,
          { imageId },
          i,
        );
      });
    };

    const loadVolume = async () => {
      const pane = panes[0];
      if (!pane) return;
      const images = await imagesOf(client, pane.studyUid, pane.seriesUid);
      if (stopped()) return;
      registerMetadata(images);
      for (const image of images) imageById.current.set(image.imageId, image);
      const volumeId = `cornerstoneStreamingImageVolume:${pane.seriesUid}`;
      const volume = await volumeLoader.createAndCacheVolume(volumeId, {
        imageIds: images.map((i) => i.imageId),
      });
      if (stopped()) return;
      volume.load();
      await setVolumesForViewports(
        engine,
        [{ volumeId }],
        panes.map((p) => p.id),
      );
      for (const p of panes) imagesByPane.current.set(p.id, images);
      engine.render();
      setStatus(key, (s) => ({ ...s, count: images.length }));
    };

    const loadStacks = () =>
      Promise.all(
        panes.map(async (pane) => {
          const images = await imagesOf(client, pane.studyUid, pane.seriesUid);
          if (stopped()) return;
          registerMetadata(images);
          for (const image of images) imageById.current.set(image.imageId, image);
          imagesByPane.current.set(pane.id, images);
          const viewport = engine.getViewport(pane.id);
          if (!(viewport instanceof StackViewport)) return;
          const ids = images.map((i) => i.imageId);
          if (pane.id === "main") {
            setMainImages(images);
            setReformatOk(canReformat(images[0] ? modalityOf(images[0]) : "", images));
            setStatus(key, (s) => ({ ...s, count: ids.length }));
          }
          await viewport.setStack(ids, 0);
          if (stopped()) return;
          viewport.render();
          prefetch(ids, pane.id === "main");
        }),
      );

    (mpr ? loadVolume() : loadStacks()).catch((e: unknown) => {
      if (stopped()) return;
      setError({ studyUid, text: errorText(e, t) });
      setStatus(key, (s) => ({ ...s, state: "error" }));
    });
    const frame = requestAnimationFrame(setMeasurementsFromState);

    return () => {
      cancelled = true;
      cancelAnimationFrame(frame);
      // Images of panes no longer shown are not worth fetching ahead any more.
      imageLoadPoolManager.clearRequestStack(CoreEnums.RequestType.Prefetch);
      for (const input of inputs) group.removeViewports(engineId, input.viewportId);
    };
    // The panes are keyed by their JSON; the callbacks they use are stable per viewer.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [panesKey, engineId, groupId]);

  // Render signals and the overlay texts of the main pane; synchronised prior scrolling.
  useEffect(() => {
    const cleanups: (() => void)[] = [];
    const key = panesKey;
    for (const pane of panes) {
      const element = paneEls.current.get(pane.id);
      if (!element) continue;
      const onRendered = () => {
        if (pane.id !== panes[0]?.id) return;
        if (!firstImageMarked.current) {
          firstImageMarked.current = true;
          performance.mark("radrelay.viewer.first-image");
          setStatus(key, (s) => (s.state === "loading" ? { ...s, state: "first-image" } : s));
        }
      };
      const onNewImage = () => {
        const viewport = viewportOf(pane.id);
        if (!viewport) return;
        const index = viewport.getCurrentImageIdIndex();
        if (pane.id === panes[0]?.id) setStatus(key, (s) => ({ ...s, index }));
        if (!syncRef.current || syncing.current || !priorUid || mpr) return;
        const other = pane.id === "main" ? "prior" : pane.id === "prior" ? "main" : null;
        if (!other) return;
        const target = viewportOf(other);
        const from = imagesByPane.current.get(pane.id)?.length ?? 0;
        const to = imagesByPane.current.get(other)?.length ?? 0;
        if (!(target instanceof StackViewport) || from < 1 || to < 1) return;
        // The same relative place in the other stack: the two studies' slices need not match.
        const wanted = from > 1 ? Math.round((index / (from - 1)) * (to - 1)) : 0;
        if (target.getCurrentImageIdIndex() === wanted) return;
        syncing.current = true;
        void target.setImageIdIndex(wanted).finally(() => {
          syncing.current = false;
        });
      };
      const onVoi = () => {
        if (pane.id !== panes[0]?.id) return;
        const viewport = viewportOf(pane.id);
        const range =
          viewport instanceof StackViewport || viewport instanceof VolumeViewport
            ? viewport.getProperties()?.voiRange
            : undefined;
        if (range) {
          const w = windowOf(range);
          const text = t("viewer.overlay.window", { width: w.width, center: w.center });
          setWindowFor({ key, text });
        }
      };
      element.addEventListener(CoreEnums.Events.IMAGE_RENDERED, onRendered);
      element.addEventListener(CoreEnums.Events.STACK_NEW_IMAGE, onNewImage);
      element.addEventListener(CoreEnums.Events.VOLUME_NEW_IMAGE, onNewImage);
      element.addEventListener(CoreEnums.Events.VOI_MODIFIED, onVoi);
      cleanups.push(() => {
        element.removeEventListener(CoreEnums.Events.IMAGE_RENDERED, onRendered);
        element.removeEventListener(CoreEnums.Events.STACK_NEW_IMAGE, onNewImage);
        element.removeEventListener(CoreEnums.Events.VOLUME_NEW_IMAGE, onNewImage);
        element.removeEventListener(CoreEnums.Events.VOI_MODIFIED, onVoi);
      });
    }
    return () => {
      for (const c of cleanups) c();
    };
  }, [panes, panesKey, priorUid, mpr, t, viewportOf, setStatus]);

  useEffect(() => {
    const events = [
      ToolEnums.Events.ANNOTATION_COMPLETED,
      ToolEnums.Events.ANNOTATION_MODIFIED,
      ToolEnums.Events.ANNOTATION_REMOVED,
    ];
    let frame = 0;
    const onChange = () => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(setMeasurementsFromState);
    };
    const onCompleted = (e: Event) => {
      const detail = (e as CustomEvent<{ annotation?: { annotationUID?: string } }>).detail;
      const uid = detail.annotation?.annotationUID;
      if (uid) {
        completed.current.add(uid);
        setChosenMeasurement(uid);
      }
      onChange();
    };
    for (const name of events) {
      eventTarget.addEventListener(
        name,
        name === ToolEnums.Events.ANNOTATION_COMPLETED ? onCompleted : onChange,
      );
    }
    return () => {
      cancelAnimationFrame(frame);
      for (const name of events) {
        eventTarget.removeEventListener(
          name,
          name === ToolEnums.Events.ANNOTATION_COMPLETED ? onCompleted : onChange,
        );
      }
    };
  }, [setMeasurementsFromState]);

  useEffect(() => {
    const frame = requestAnimationFrame(setMeasurementsFromState);
    return () => {
      cancelAnimationFrame(frame);
    };
  }, [setMeasurementsFromState]);

  // Cine: the active pane steps at `fps`, round and round.
  useEffect(() => {
    if (!cine) return;
    const timer = window.setInterval(() => {
      const viewport = viewportOf(activePane.current || "main");
      if (!viewport) return;
      const count = imagesByPane.current.get(viewport.id)?.length ?? 0;
      if (count < 2) return;
      const next = (viewport.getCurrentImageIdIndex() + 1) % count;
      jumpTo(viewport, next, count);
    }, 1000 / fps);
    return () => {
      window.clearInterval(timer);
    };
  }, [cine, fps, viewportOf]);

  // --- actions -----------------------------------------------------------------------------

  const targetViewports = useCallback((): CoreTypes.IViewport[] => {
    const out: CoreTypes.IViewport[] = [];
    for (const pane of panes) {
      const v = viewportOf(pane.id);
      if (v) out.push(v);
    }
    return out;
  }, [panes, viewportOf]);

  const applyPreset = (id: string) => {
    const preset = presetById(id);
    if (!preset) return;
    for (const viewport of displayViewports(targetViewports())) {
      viewport.setProperties({ voiRange: voiRange(preset.width, preset.center) });
      viewport.render();
    }
    const name = t(`viewer.preset.${preset.id}` as MessageKey);
    setAnnounce(t("viewer.announce.preset", { name }));
  };

  const invert = () => {
    for (const v of displayViewports(targetViewports())) {
      v.setProperties({ invert: !v.getProperties()?.invert });
      v.render();
    }
  };

  const reset = () => {
    for (const v of displayViewports(targetViewports())) {
      v.resetCamera();
      v.resetProperties();
      v.render();
    }
  };

  const scrollBy = (delta: number) => {
    const viewport = viewportOf(activePane.current || "main");
    if (!viewport) return;
    const count = imagesByPane.current.get(viewport.id)?.length ?? 0;
    jumpTo(viewport, clampIndex(viewport.getCurrentImageIdIndex() + delta, count), count);
  };

  const scrollToEnd = (last: boolean) => {
    const viewport = viewportOf(activePane.current || "main");
    if (!viewport) return;
    const count = imagesByPane.current.get(viewport.id)?.length ?? 0;
    jumpTo(viewport, last ? count - 1 : 0, count);
  };

  const currentImage: ImageRef | undefined = mpr ? undefined : mainImages[status.index];
  const currentKey: KeyImage | null =
    currentImage && current
      ? {
          studyUid,
          seriesUid: current.seriesUid,
          sopInstanceUid: currentImage.sopInstanceUid,
          frame: currentImage.frame,
          label: t("viewer.keyImage.label", {
            series: current.description || t("viewer.series.noDescription"),
            number: currentImage.instanceNumber ?? status.index + 1,
          }),
        }
      : null;
  const marked = [
    ...keyImages.filter((k) => !ownMarks.some((o) => !o.marked && sameImage(o.image, k))),
    ...ownMarks
      .filter((o) => o.marked && !keyImages.some((k) => sameImage(o.image, k)))
      .map((o) => o.image),
  ];
  const isMarked = currentKey ? marked.some((k) => sameImage(k, currentKey)) : false;

  const toggleKeyImage = () => {
    if (!currentKey) return;
    const next = !isMarked;
    setOwnMarks((old) => [
      ...old.filter((o) => !sameImage(o.image, currentKey)),
      { image: currentKey, marked: next },
    ]);
    onKeyImage?.(currentKey, next);
    setAnnounce(t(next ? "viewer.announce.marked" : "viewer.announce.unmarked"));
  };

  const sendMeasurement = (uid: string | null) => {
    const chosen =
      measurements.find((m) => m.uid === uid) ?? measurements[measurements.length - 1];
    if (!chosen) return;
    onMeasurement?.(chosen.measurement);
    setAnnounce(t("viewer.announce.sent", { text: chosen.measurement.text }));
  };

  const removeMeasurement = (uid: string) => {
    annotations.state.removeAnnotation(uid);
    for (const v of targetViewports()) v.render();
    setMeasurementsFromState();
  };

  const run = (action: ViewerAction) => {
    switch (action.type) {
      case "scroll":
        scrollBy(action.delta);
        break;
      case "first":
        scrollToEnd(false);
        break;
      case "last":
        scrollToEnd(true);
        break;
      case "preset":
        applyPreset(action.id);
        break;
      case "tool":
        setTool(action.tool);
        break;
      case "invert":
        invert();
        break;
      case "reset":
        reset();
        break;
      case "cine":
        setCine((c) => !c);
        break;
      case "keyImage":
        toggleKeyImage();
        break;
      case "help":
        setHelp((h) => !h);
        break;
    }
  };

  const onKeyDown = (event: React.KeyboardEvent<HTMLDivElement>) => {
    const target = event.target as HTMLElement;
    if (["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName)) return;
    // Space and arrows on a focused button keep their usual meaning.
    if (target.tagName === "BUTTON" && [" ", "Enter"].includes(event.key)) return;
    if (event.key === "Escape" && help) {
      setHelp(false);
      return;
    }
    const action = actionForKey(event, status.count);
    if (!action) return;
    event.preventDefault();
    run(action);
  };

  const openPrior = (value: string) => {
    setMpr(false);
    setCine(false);
    setPriorUid(value || null);
  };

  const titled = (label: string, match: (a: ViewerAction) => boolean) => {
    const key = shortcutFor(match);
    return key ? `${label} (${key})` : label;
  };

  // --- render ------------------------------------------------------------------------------

  if (errorShown && !series) {
    return (
      <div className="viewer viewer-error" role="alert">
        {errorShown}
      </div>
    );
  }

  const grid =
    mpr ? { rows: 1, columns: 3 } : priorUid ? { rows: 1, columns: 2 } : layoutById(layout);
  const volumes = canRenderVolumes();

  return (
    <div className="viewer" data-study-uid={studyUid} onKeyDown={onKeyDown}>
      <h1 className="visually-hidden">{t("viewer.title")}</h1>
      <div className="viewer-toolbar" role="toolbar" aria-label={t("viewer.toolbar")}>
        <div className="viewer-group" role="group" aria-label={t("viewer.tools")}>
          {TOOLS.map((name) => (
            <button
              key={name}
              type="button"
              aria-pressed={tool === name}
              onClick={() => setTool(name)}
              title={titled(
                t(`viewer.tool.${name}` as MessageKey),
                (a) => a.type === "tool" && a.tool === name,
              )}
            >
              {t(`viewer.tool.${name}` as MessageKey)}
            </button>
          ))}
        </div>
        <div className="viewer-group" role="group" aria-label={t("viewer.presets")}>
          {PRESETS.map((p) => (
            <button
              key={p.id}
              type="button"
              onClick={() => applyPreset(p.id)}
              title={t("viewer.preset.title", {
                name: t(`viewer.preset.${p.id}` as MessageKey),
                width: p.width,
                center: p.center,
                key: p.key,
              })}
            >
              {t(`viewer.preset.${p.id}` as MessageKey)}
            </button>
          ))}
        </div>
        <div className="viewer-group" role="group" aria-label={t("viewer.view")}>
          <button
            type="button"
            onClick={invert}
            title={titled(t("viewer.invert"), (a) => a.type === "invert")}
          >
            {t("viewer.invert")}
          </button>
          <button
            type="button"
            onClick={reset}
            title={titled(t("viewer.reset"), (a) => a.type === "reset")}
          >
            {t("viewer.reset")}
          </button>
        </div>
        <div className="viewer-group" role="group" aria-label={t("viewer.layout")}>
          {LAYOUTS.map((l) => (
            <button
              key={l.id}
              type="button"
              aria-pressed={!mpr && !priorUid && layout === l.id}
              onClick={() => {
                setMpr(false);
                setPriorUid(null);
                setLayout(l.id);
              }}
              aria-label={t("viewer.layoutOf", { layout: l.id })}
            >
              {l.id}
            </button>
          ))}
          <button
            type="button"
            aria-pressed={mpr}
            disabled={!reformatOk || !volumes}
            onClick={() => {
              setPriorUid(null);
              setCine(false);
              setMpr((m) => !m);
            }}
            title={
              !volumes
                ? t("viewer.mpr.noWebgl")
                : reformatOk || mpr
                  ? t("viewer.mpr.title")
                  : t("viewer.mpr.notVolume")
            }
          >
            {t("viewer.mpr")}
          </button>
        </div>
        <div className="viewer-group" role="group" aria-label={t("viewer.cine")}>
          <button
            type="button"
            aria-pressed={cine}
            onClick={() => setCine((c) => !c)}
            title={titled(
              t(cine ? "viewer.cine.stop" : "viewer.cine.play"),
              (a) => a.type === "cine",
            )}
          >
            {t(cine ? "viewer.cine.stop" : "viewer.cine.play")}
          </button>
          <label className="viewer-fps">
            {t("viewer.cine.fps")}
            <select value={fps} onChange={(e) => setFps(Number(e.target.value))}>
              {CINE_RATES.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          </label>
        </div>
        <div className="viewer-group" role="group" aria-label={t("viewer.report")}>
          <button
            type="button"
            aria-pressed={isMarked}
            disabled={!currentKey}
            onClick={toggleKeyImage}
            title={titled(t("viewer.keyImage"), (a) => a.type === "keyImage")}
          >
            {t(isMarked ? "viewer.keyImage.marked" : "viewer.keyImage")}
          </button>
          <button
            type="button"
            disabled={measurements.length === 0 || !onMeasurement}
            onClick={() => sendMeasurement(chosenMeasurement)}
            title={t("viewer.toReport.title")}
          >
            {t("viewer.toReport")}
          </button>
        </div>
        {priors.length > 0 && (
          <div className="viewer-group">
            <label className="viewer-prior">
              {t("viewer.prior")}
              <select value={priorUid ?? ""} onChange={(e) => openPrior(e.target.value)}>
                <option value="">{t("viewer.prior.none")}</option>
                {priors.map((p) => (
                  <option key={p.studyUid} value={p.studyUid}>
                    {p.label}
                  </option>
                ))}
              </select>
            </label>
            {priorUid && (
              <label className="viewer-sync">
                <input
                  type="checkbox"
                  checked={syncScroll}
                  onChange={(e) => setSyncScroll(e.target.checked)}
                />
                {t("viewer.prior.sync")}
              </label>
            )}
          </div>
        )}
        <div className="viewer-help-wrap">
          <button
            type="button"
            aria-expanded={help}
            aria-controls={`viewer-help-${uid}`}
            onClick={() => setHelp((h) => !h)}
            title={titled(t("viewer.help"), (a) => a.type === "help")}
          >
            {t("viewer.help")}
          </button>
          {help && (
            <div
              className="viewer-help"
              id={`viewer-help-${uid}`}
              role="dialog"
              aria-label={t("viewer.help.title")}
            >
              <div className="viewer-help-head">
                <h2>{t("viewer.help.title")}</h2>
                <button type="button" onClick={() => setHelp(false)}>
                  {t("viewer.help.close")}
                </button>
              </div>
              <dl>
                {SHORTCUTS.map((s) => (
                  <div key={s.keys.join()} className="viewer-help-row">
                    <dt>
                      <kbd>{keyLabel(s.keys[0] ?? "")}</kbd>
                    </dt>
                    <dd>{describe(s.action, t)}</dd>
                  </div>
                ))}
                <div className="viewer-help-row">
                  <dt>{t("viewer.help.mouse")}</dt>
                  <dd>{t("viewer.help.mouseText")}</dd>
                </div>
              </dl>
            </div>
          )}
        </div>
      </div>

      <div className="viewer-body">
        <nav className="viewer-series" aria-label={t("viewer.series")}>
          {series === null ? (
            <p>{t("app.loading")}</p>
          ) : series.length === 0 ? (
            <p>{t("viewer.series.none")}</p>
          ) : (
            <ul>
              {series.map((s, i) => (
                <SeriesThumbnail
                  key={s.seriesUid}
                  studyUid={studyUid}
                  series={s}
                  selected={i === selected}
                  onSelect={() => {
                    setMpr(false);
                    setCine(false);
                    setSelected(i);
                  }}
                />
              ))}
            </ul>
          )}
        </nav>

        <div
          className="viewer-grid"
          style={{
            gridTemplateRows: `repeat(${grid.rows}, minmax(0, 1fr))`,
            gridTemplateColumns: `repeat(${grid.columns}, minmax(0, 1fr))`,
          }}
        >
          {panes.map((pane, i) => {
            const main = i === 0;
            const label = paneLabel(pane, series, priorSeries, priors, t);
            return (
              <div key={`${pane.id}-${pane.seriesUid}-${pane.kind}`} className="viewer-pane">
                <div
                  ref={(el) => {
                    if (el) paneEls.current.set(pane.id, el);
                    else paneEls.current.delete(pane.id);
                  }}
                  className="viewer-canvas"
                  role="img"
                  aria-label={label}
                  tabIndex={0}
                  onPointerDown={() => {
                    activePane.current = pane.id;
                  }}
                  onFocus={() => {
                    activePane.current = pane.id;
                  }}
                  onContextMenu={(e) => e.preventDefault()}
                  {...(main
                    ? {
                        "data-testid": "viewport-main",
                        "data-state": status.state,
                        "data-image-index": status.index,
                        "data-image-count": status.count,
                      }
                    : {})}
                />
                <div className="viewer-overlay" aria-hidden={!main}>
                  <span>{label}</span>
                  {main && status.count > 0 && (
                    <span>
                      {t("viewer.overlay.image", { n: status.index + 1, count: status.count })}
                    </span>
                  )}
                  {main && windowText && <span>{windowText}</span>}
                  {main && isMarked && (
                    <span className="viewer-key-badge">{t("viewer.keyImage.marked")}</span>
                  )}
                </div>
              </div>
            );
          })}
        </div>

        <aside className="viewer-side" aria-label={t("viewer.measurements")}>
          <h2>{t("viewer.measurements")}</h2>
          {measurements.length === 0 ? (
            <p className="viewer-muted">{t("viewer.measurements.none")}</p>
          ) : (
            <ul role="list" aria-label={t("viewer.measurements")}>
              {measurements.map((m) => (
                <li key={m.uid} aria-current={m.uid === chosenMeasurement ? "true" : undefined}>
                  <button
                    type="button"
                    className="viewer-link"
                    onClick={() => setChosenMeasurement(m.uid)}
                  >
                    {t(`viewer.kind.${m.measurement.kind}` as MessageKey)}: {m.measurement.text}
                  </button>
                  {onMeasurement && (
                    <button type="button" onClick={() => sendMeasurement(m.uid)}>
                      {t("viewer.toReport")}
                    </button>
                  )}
                  <button
                    type="button"
                    onClick={() => removeMeasurement(m.uid)}
                    aria-label={t("viewer.measure.remove", { text: m.measurement.text })}
                  >
                    ×
                  </button>
                </li>
              ))}
            </ul>
          )}
          <h2>{t("viewer.keyImages")}</h2>
          {marked.length === 0 ? (
            <p className="viewer-muted">{t("viewer.keyImages.none")}</p>
          ) : (
            <ul role="list" aria-label={t("viewer.keyImages")}>
              {marked.map((k) => (
                <li key={`${k.sopInstanceUid}-${k.frame ?? 0}`}>{k.label}</li>
              ))}
            </ul>
          )}
        </aside>
      </div>
      <p className="visually-hidden" role="status" aria-live="polite">
        {status.state === "loaded" ? t("viewer.status.loaded") : ""} {announce}
      </p>
    </div>
  );
}

function jumpTo(viewport: CoreTypes.IViewport, index: number, count: number): void {
  if (count < 1) return;
  if (viewport instanceof StackViewport) {
    void viewport.setImageIdIndex(clampIndex(index, count));
    return;
  }
  const delta = clampIndex(index, count) - viewport.getCurrentImageIdIndex();
  if (delta !== 0) coreUtilities.scroll(viewport, { delta });
}

function modalityOf(image: ImageRef): string {
  return text(image.metadata, TAG.Modality);
}

/** The viewports whose display properties (VOI, invert) the toolbar sets. */
function displayViewports(viewports: unknown[]): (StackViewport | VolumeViewport)[] {
  return viewports.filter(
    (v): v is StackViewport | VolumeViewport =>
      v instanceof StackViewport || v instanceof VolumeViewport,
  );
}

function studyOfImageId(imageId: string): string {
  return /\/studies\/([^/]+)/.exec(imageId)?.[1] ?? "";
}

function seriesOfImageId(imageId: string): string {
  return /\/series\/([^/]+)/.exec(imageId)?.[1] ?? "";
}

function paneLabel(
  pane: Pane,
  series: SeriesInfo[] | null,
  priorSeries: SeriesInfo[] | null,
  priors: { studyUid: string; label: string }[],
  t: (key: MessageKey, vars?: Record<string, string | number>) => string,
): string {
  const list = pane.prior ? priorSeries : series;
  const s = list?.find((x) => x.seriesUid === pane.seriesUid);
  const name = s
    ? t("viewer.series.label", {
        number: s.number ?? "—",
        modality: s.modality,
        description: s.description || t("viewer.series.noDescription"),
      })
    : "";
  if (pane.prior) {
    const prior = priors.find((p) => p.studyUid === pane.studyUid)?.label ?? "";
    return t("viewer.pane.prior", { prior, series: name });
  }
  if (pane.kind !== "stack") {
    const plane = t(`viewer.plane.${pane.kind}` as MessageKey);
    return t("viewer.pane.mpr", { plane, series: name });
  }
  return t("viewer.pane", { series: name });
}

function describe(
  action: ViewerAction,
  t: (key: MessageKey, vars?: Record<string, string | number>) => string,
): string {
  switch (action.type) {
    case "scroll":
      return Math.abs(action.delta) === 1
        ? t(action.delta < 0 ? "viewer.key.previous" : "viewer.key.next")
        : t(action.delta < 0 ? "viewer.key.pageUp" : "viewer.key.pageDown");
    case "first":
      return t("viewer.key.first");
    case "last":
      return t("viewer.key.last");
    case "preset":
      return t(`viewer.preset.${action.id}` as MessageKey);
    case "tool":
      return t(`viewer.tool.${action.tool}` as MessageKey);
    case "invert":
      return t("viewer.invert");
    case "reset":
      return t("viewer.reset");
    case "cine":
      return t("viewer.key.cine");
    case "keyImage":
      return t("viewer.keyImage");
    case "help":
      return t("viewer.help");
  }
}
