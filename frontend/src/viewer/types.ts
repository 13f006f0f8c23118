// What the viewer gives the rest of the reading room: the contract between viewer/ (Cornerstone3D)
// and the report editor. The editor never imports Cornerstone; it only sees these shapes.

/** A measurement the reader chose to send to the report (a length, an angle, an ROI). */
export interface Measurement {
  kind: "length" | "angle" | "ellipse";
  /** Display text in the reader's language, e.g. "23.4 mm" or "mean 41 HU, area 120 mm²". */
  text: string;
  /** The main value and its UCUM unit ("mm", "deg", "[hnsf'U]", "mm2"). */
  value: number;
  unit: string;
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
  /** 1-based frame number for multi-frame instances, else null. */
  frame: number | null;
}

/** An image the reader marked as key image (goes into the report's key_images). */
export interface KeyImage {
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
  frame: number | null;
  /** Series description and image number, for the report editor's list. */
  label: string;
}

export interface ViewerProps {
  /** The case's study, opened first. */
  studyUid: string;
  /** Prior studies of the same patient the reader may open beside the current one. */
  priors?: { studyUid: string; label: string }[];
  /** Called when the reader presses "to report" on a measurement. */
  onMeasurement?: (measurement: Measurement) => void;
  /** Called when the reader marks (or unmarks: marked=false) the image on screen as key image. */
  onKeyImage?: (image: KeyImage, marked: boolean) => void;
  /** Key images already in the report, shown as marked. */
  keyImages?: KeyImage[];
}
