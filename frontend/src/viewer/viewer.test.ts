import { describe, expect, it } from "vitest";

import { actionForKey, clampIndex, pageStep, shortcutFor, SHORTCUTS } from "./keys";
import { cellCount, layoutById, LAYOUTS, seriesForCells } from "./layout";
import { toMeasurement } from "./measure";
import {
  canReformat,
  imagesOfSeries,
  seriesFromQido,
  slicePosition,
  type DicomJson,
} from "./metadata";
import { PRESETS, presetById, voiRange, windowOf } from "./presets";

const where = { studyUid: "1.2", seriesUid: "1.2.3", sopInstanceUid: "1.2.3.4", frame: null };
const en = { mean: "mean", area: "area", locale: "en" };

function instance(sop: string, number: number, z: number | null, frames?: number): DicomJson {
  const ds: DicomJson = {
    "00080018": { vr: "UI", Value: [sop] },
    "00080060": { vr: "CS", Value: ["CT"] },
    "00200013": { vr: "IS", Value: [number] },
    "00280010": { vr: "US", Value: [256] },
  };
  if (z !== null) {
    ds["00200032"] = { vr: "DS", Value: [0, 0, z] };
    ds["00200037"] = { vr: "DS", Value: [1, 0, 0, 0, 1, 0] };
  }
  if (frames) ds["00280008"] = { vr: "IS", Value: [frames] };
  return ds;
}

describe("presets", () => {
  it("has the five CT windows with the usual values", () => {
    expect(PRESETS.map((p) => [p.id, p.width, p.center])).toEqual([
      ["brain", 80, 40],
      ["lung", 1500, -600],
      ["bone", 2000, 300],
      ["abdomen", 400, 40],
      ["mediastinum", 350, 50],
    ]);
  });

  it("turns width/centre into a VOI range and back", () => {
    expect(voiRange(1500, -600)).toEqual({ lower: -1350, upper: 150 });
    expect(windowOf(voiRange(80, 40))).toEqual({ width: 80, center: 40 });
    expect(presetById("lung")?.width).toBe(1500);
    expect(presetById("liver")).toBeUndefined();
  });
});

describe("layouts", () => {
  it("has 1x1, 1x2 and 2x2 grids", () => {
    expect(LAYOUTS.map((l) => [l.id, cellCount(l)])).toEqual([
      ["1x1", 1],
      ["1x2", 2],
      ["2x2", 4],
    ]);
    expect(layoutById("1x2")).toEqual({ id: "1x2", rows: 1, columns: 2 });
  });

  it("fills the panes from the chosen series on, wrapping round", () => {
    expect(seriesForCells(["a", "b", "c"], 1, 4)).toEqual(["b", "c", "a", "b"]);
    expect(seriesForCells(["a"], 0, 2)).toEqual(["a", "a"]);
    expect(seriesForCells([], 0, 4)).toEqual([]);
  });
});

describe("measurements", () => {
  it("writes a length in mm with one decimal", () => {
    const m = toMeasurement("length", { length: 23.4449, lengthUnit: "mm" }, where, en);
    expect(m).toEqual({ kind: "length", text: "23.4 mm", value: 23.4, unit: "mm", ...where });
  });

  it("writes an angle in degrees", () => {
    const m = toMeasurement("angle", { angle: 89.96 }, where, en);
    expect(m?.text).toBe("90.0°");
    expect(m?.unit).toBe("deg");
  });

  it("writes an ellipse's mean in HU and its area", () => {
    const stats = { mean: 41.4, area: 120.4, areaUnit: "mm²", modalityUnit: "HU" };
    const m = toMeasurement("ellipse", stats, where, en);
    expect(m?.text).toBe("mean 41 HU, area 120 mm²");
    expect(m?.value).toBe(41);
    expect(m?.unit).toBe("[hnsf'U]");
    const zh = toMeasurement("ellipse", stats, where, { mean: "均值", area: "面积", locale: "zh-CN" });
    expect(zh?.text).toBe("均值 41 HU, 面积 120 mm²");
  });

  it("has nothing to say before the tool computed its numbers", () => {
    expect(toMeasurement("length", { length: null }, where, en)).toBeNull();
    expect(toMeasurement("ellipse", { mean: 3 }, where, en)).toBeNull();
  });
});

describe("series metadata", () => {
  it("lists a study's series by number", () => {
    const qido: DicomJson[] = [
      {
        "0020000E": { vr: "UI", Value: ["1.2.2"] },
        "00080060": { vr: "CS", Value: ["CT"] },
        "00200011": { vr: "IS", Value: [2] },
        "00201209": { vr: "IS", Value: [200] },
      },
      {
        "0020000E": { vr: "UI", Value: ["1.2.1"] },
        "00080060": { vr: "CS", Value: ["CT"] },
        "0008103E": { vr: "LO", Value: ["Scout"] },
        "00200011": { vr: "IS", Value: [1] },
      },
    ];
    expect(seriesFromQido(qido)).toEqual([
      { seriesUid: "1.2.1", modality: "CT", description: "Scout", number: 1, instances: null },
      { seriesUid: "1.2.2", modality: "CT", description: "", number: 2, instances: 200 },
    ]);
  });

  it("orders a CT stack head first by position, and builds wadors ids", () => {
    const images = imagesOfSeries("http://h/dicomweb", "1.2", "1.2.3", [
      instance("a", 1, -10),
      instance("b", 2, 10),
      instance("c", 3, 0),
    ]);
    expect(images.map((i) => i.sopInstanceUid)).toEqual(["b", "c", "a"]);
    expect(images[0]?.imageId).toBe(
      "wadors:http://h/dicomweb/studies/1.2/series/1.2.3/instances/b/frames/1",
    );
    expect(slicePosition(instance("x", 1, 7))).toBe(7);
  });

  it("falls back to instance numbers and expands multi-frame instances", () => {
    const images = imagesOfSeries("/d", "s", "se", [
      instance("b", 2, null, 3),
      instance("a", 1, null),
    ]);
    expect(images.map((i) => [i.sopInstanceUid, i.frame])).toEqual([
      ["a", null],
      ["b", 1],
      ["b", 2],
      ["b", 3],
    ]);
    expect(images[3]?.imageId.endsWith("/instances/b/frames/3")).toBe(true);
  });

  it("reformats only CT/MR stacks of enough parallel slices", () => {
    const many = Array.from({ length: 30 }, (_, i) => instance(`s${i}`, i + 1, i));
    expect(canReformat("CT", imagesOfSeries("/d", "s", "se", many))).toBe(true);
    expect(canReformat("CR", imagesOfSeries("/d", "s", "se", many))).toBe(false);
    expect(canReformat("CT", imagesOfSeries("/d", "s", "se", many.slice(0, 5)))).toBe(false);
  });
});

describe("keyboard", () => {
  it("maps the scroll keys, with a page step of a tenth of the stack", () => {
    expect(actionForKey({ key: "ArrowDown" }, 200)).toEqual({ type: "scroll", delta: 1 });
    expect(actionForKey({ key: "ArrowUp" }, 200)).toEqual({ type: "scroll", delta: -1 });
    expect(actionForKey({ key: "PageDown" }, 200)).toEqual({ type: "scroll", delta: 20 });
    expect(actionForKey({ key: "PageUp" }, 20)).toEqual({ type: "scroll", delta: -5 });
    expect(actionForKey({ key: "Home" }, 20)).toEqual({ type: "first" });
    expect(actionForKey({ key: "End" }, 20)).toEqual({ type: "last" });
    expect(pageStep(1000)).toBe(100);
  });

  it("leaves modified keys to the browser and knows presets and tools", () => {
    expect(actionForKey({ key: "r", ctrlKey: true }, 10)).toBeNull();
    expect(actionForKey({ key: "2" }, 10)).toEqual({ type: "preset", id: "lung" });
    expect(actionForKey({ key: "L" }, 10)).toEqual({ type: "tool", tool: "length" });
    expect(actionForKey({ key: "q" }, 10)).toBeNull();
  });

  it("gives every preset a key and shows keys for titles", () => {
    for (const p of PRESETS) {
      expect(actionForKey({ key: p.key }, 1)).toEqual({ type: "preset", id: p.id });
    }
    expect(shortcutFor((a) => a.type === "cine")).toBe("Space");
    expect(shortcutFor((a) => a.type === "tool" && a.tool === "windowLevel")).toBe("W");
    expect(new Set(SHORTCUTS.flatMap((s) => s.keys)).size).toBe(
      SHORTCUTS.flatMap((s) => s.keys).length,
    );
  });

  it("clamps an index into the stack", () => {
    expect(clampIndex(-3, 10)).toBe(0);
    expect(clampIndex(12, 10)).toBe(9);
    expect(clampIndex(4, 0)).toBe(0);
  });
});
