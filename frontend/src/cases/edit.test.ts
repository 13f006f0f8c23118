import { describe, expect, it } from "vitest";

import type { Case } from "../api/types";
import { translate, translateValue } from "../i18n/core";
import { actorText, changes, eventDetails, fieldsOf } from "./edit";

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
  subspecialty: null,
  work_units: null,
  deadline: null,
  sla_state: "ok",
  reader_id: null,
  reader_name: null,
  lease_expires_at: null,
  routed_at: null,
  assigned_at: null,
  opened_at: null,
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

  it("clears a subspecialty with null when No preference is chosen", () => {
    const chest: Case = { ...base, requested_subspecialty: "chest" };
    const fields = fieldsOf(chest);
    expect(fields.requested_subspecialty).toBe("chest");
    expect(changes(chest, fields)).toEqual({});
    const diff = changes(chest, { ...fields, requested_subspecialty: "" });
    expect(diff).toEqual({ requested_subspecialty: null });
    // null survives into the PATCH body (undefined would be left out, keeping the value)
    expect(JSON.stringify(diff)).toBe('{"requested_subspecialty":null}');
    expect(changes(chest, { ...fields, requested_subspecialty: "neuro" })).toEqual({
      requested_subspecialty: "neuro",
    });
    // nothing to clear: no change
    expect(changes(base, { ...fieldsOf(base), requested_subspecialty: "" })).toEqual({});
  });

  it("names who acted on the timeline", () => {
    const t = (k: Parameters<typeof translate>[1], vars?: Record<string, string | number>) =>
      translate("en", k, vars);
    const zh = (k: Parameters<typeof translate>[1], vars?: Record<string, string | number>) =>
      translate("zh-CN", k, vars);
    expect(actorText({ actor_id: 7, actor_name: "Dr Wang" }, t)).toBe("by Dr Wang");
    expect(actorText({ actor_id: 7, actor_name: "王医生" }, zh)).toBe("操作人 王医生");
    // a user without a display name (or one since removed): their id
    expect(actorText({ actor_id: 7, actor_name: "" }, t)).toBe("by user 7");
    expect(actorText({ actor_id: 7, actor_name: null }, t)).toBe("by user 7");
    // the system itself (a study arriving over C-STORE, the stable timer)
    expect(actorText({ actor_id: null, actor_name: null }, t)).toBeNull();
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

  it("labels what routing and the worklist put on the timeline", () => {
    const t = (key: Parameters<typeof translate>[1]) => translate("zh-CN", key);
    const tv = (prefix: string, value: string) => translateValue("zh-CN", prefix, value);
    const at = (iso: string) => `at ${iso}`;
    expect(
      eventDetails({ trigger: "released", mode: "pool", offered: [3, 5], escalation_step: 0 }, t, tv, at),
    ).toEqual(["起因：医生退回", "分派结果：推送给多位医生待认领", "推送给（用户 ID）：3, 5", "升级级别：0"]);
    // nobody eligible: no reader, nobody offered, nothing to list for them
    expect(eventDetails({ mode: "none", reader_id: null, offered: [] }, t, tv)).toEqual(["分派结果：暂无符合条件的医生"]);
    // a priority change names both priorities; a pause lists the readers let go
    expect(eventDetails({ previous: "routine", priority: "stat" }, t, tv)).toEqual(["此前：常规", "优先级：危急"]);
    expect(eventDetails({ previous: [7] }, t, tv)).toEqual(["此前：7"]);
    expect(eventDetails({ deadline: "2024-01-31T10:00:00Z" }, t, tv, at)).toEqual([
      "报告时限：at 2024-01-31T10:00:00Z",
    ]);
    expect(eventDetails({ step: 2, overdue_wait: true }, t, tv)).toEqual(["升级级别：2", "超过最长等待时间：是"]);
    // a trigger a later backend adds shows as it is
    expect(eventDetails({ trigger: "rule_change" }, t, tv)).toEqual(["起因：rule_change"]);
  });
});
