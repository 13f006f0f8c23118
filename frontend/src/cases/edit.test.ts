import { describe, expect, it } from "vitest";

import type { Case } from "../api/types";
import { translate, translateValue } from "../i18n/core";
import { changes, eventDetails, fieldsOf } from "./edit";

const base: Case = {
  id: 1,
  hospital_id: 1,
  hospital_code: "QSX",
  status: "ready",
  priority: "routine",
  clinical_question: "Cough",
  clinical_history: "",
  requested_exam: "CR CHEST",
  requested_subspecialty: null,
  source: "upload",
  received_at: "2024-01-31T09:30:00Z",
  last_instance_at: "2024-01-31T09:30:00Z",
  ready_at: null,
  late_instances: 0,
  flags: [],
  study_instance_uid: "1.2.3",
  accession_number: "",
  study_date: "20240131",
  study_description: "CHEST",
  modalities: ["CR"],
  number_of_series: 1,
  number_of_instances: 1,
  patient_name: "Li^Na=李^娜",
  patient_id: "P1",
  issuer_of_patient_id: "",
  patient_birth_date: "",
  patient_sex: "F",
};

describe("case edits", () => {
  it("sends only what changed", () => {
    const fields = fieldsOf(base);
    expect(changes(base, fields)).toEqual({});
    expect(
      changes(base, { ...fields, priority: "stat", clinical_question: " Cough ", requested_subspecialty: "chest" }),
    ).toEqual({ priority: "stat", requested_subspecialty: "chest" });
    expect(changes(base, { ...fields, requested_exam: "" })).toEqual({ requested_exam: "" });
  });

  it("describes timeline details", () => {
    const t = (k: Parameters<typeof translate>[1]) => translate("en", k);
    const tv = (p: string, v: string) => translateValue("en", p, v);
    expect(eventDetails({ reason: "upload_complete" }, t, tv)).toEqual(["reason: upload complete"]);
    expect(eventDetails({ fields: ["priority", "clinical_question"] }, t, tv)).toEqual([
      "fields: Priority, Clinical question",
    ]);
    expect(eventDetails({ source: "cstore", count: 3, other: { a: 1 } }, t, tv)).toEqual([
      "source: DICOM C-STORE",
      "count: 3",
      'other: {"a":1}',
    ]);
  });
});
