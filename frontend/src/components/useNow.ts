import { useEffect, useState } from "react";

/** The time now (epoch ms), renewed every `intervalMs`: for countdowns that must move without a
 * refetch (the reading room ticks every second, the control room's board every 30 s). */
export function useNow(intervalMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const handle = setInterval(() => {
      setNow(Date.now());
    }, intervalMs);
    return () => {
      clearInterval(handle);
    };
  }, [intervalMs]);
  return now;
}
