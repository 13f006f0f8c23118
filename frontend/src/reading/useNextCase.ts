import { useState } from "react";

import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { navigate } from "../router";
import { useSession } from "../session";
import { claimCase, getWorklist } from "./api";
import { nextStep } from "./worklist";

/** "Next case": opens the first held case (other than the one on screen) or claims the top
 * offer, then goes to its reading page. */
export function useNextCase(currentId: number | null) {
  const { t } = useI18n();
  const { client } = useSession();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [empty, setEmpty] = useState(false);

  const claimAndOpen = async (caseId: number) => {
    await claimCase(client, caseId);
    navigate(`/reading/${caseId}`);
  };

  const go = async () => {
    if (busy) return;
    setBusy(true);
    setError(null);
    setEmpty(false);
    try {
      const step = nextStep((await getWorklist(client)).items, currentId);
      if (!step) setEmpty(true);
      else if (step.kind === "open") navigate(`/reading/${step.caseId}`);
      else await claimAndOpen(step.caseId);
    } catch (e) {
      setError(errorText(e, t));
    } finally {
      setBusy(false);
    }
  };

  return { go, claimAndOpen, busy, error, empty };
}
