import { useCallback, useEffect, useMemo, useState } from "react";

import { ApiClient, sessionTokenStore, type SignOutReason, type Tokens } from "./api/client";
import type { Me } from "./api/types";
import { Header } from "./components/Header";
import { errorText } from "./errors";
import { useI18n } from "./i18n/context";
import { LiveProvider } from "./live/LiveProvider";
import { AdminPage } from "./pages/AdminPage";
import { CasesPage } from "./pages/CasesPage";
import { ControlPage } from "./pages/ControlPage";
import { NotFoundPage } from "./pages/NotFoundPage";
import { ReadingPage } from "./pages/ReadingPage";
import { SignInPage } from "./pages/SignInPage";
import { UploadPage } from "./pages/UploadPage";
import { ViewerPage } from "./pages/ViewerPage";
import { WorklistPage } from "./pages/WorklistPage";
import { navigate, parseRoute, usePathname } from "./router";
import { SessionContext, homePath, useSession, type Session } from "./session";

const client = new ApiClient({ store: sessionTokenStore() });

export function App() {
  const { t } = useI18n();
  const [tokens, setTokens] = useState<Tokens | null>(client.session);
  const [ended, setEnded] = useState<SignOutReason | null>(null);
  const [user, setUser] = useState<Me | null>(null);
  const [userError, setUserError] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);
  const signedIn = tokens !== null;

  useEffect(
    () =>
      client.subscribe((next, reason) => {
        setTokens(next);
        if (!next) {
          setUser(null);
          setEnded(reason ?? null);
        }
      }),
    [],
  );

  useEffect(() => {
    if (!signedIn) return;
    let live = true;
    client.me().then(
      (me) => {
        if (live) {
          setUser(me);
          setUserError(null);
        }
      },
      (error: unknown) => {
        if (live) setUserError(errorText(error, t));
      },
    );
    return () => {
      live = false;
    };
    // t is left out on purpose: a language switch must not refetch the user.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [signedIn, attempt]);

  const signOut = useCallback(() => {
    // The page changes at once; the server's answer (or none) does not matter.
    void client.signOut("signed_out");
  }, []);

  const session = useMemo<Session | null>(
    () => (user ? { client, user, signOut } : null),
    [user, signOut],
  );

  if (!signedIn) {
    return (
      <SignInPage
        client={client}
        notice={ended === "expired" ? t("signIn.expired") : ended === "signed_out" ? t("signIn.signedOut") : null}
      />
    );
  }
  if (!session) {
    return (
      <main className="center-page" id="main">
        {userError ? (
          <div className="card narrow">
            <p role="alert" className="error">
              {t("error.loadUser")} {userError}
            </p>
            <div className="actions">
              <button type="button" onClick={() => setAttempt((n) => n + 1)}>
                {t("app.retry")}
              </button>
              <button type="button" className="secondary" onClick={signOut}>
                {t("nav.signOut")}
              </button>
            </div>
          </div>
        ) : (
          <p role="status">{t("app.loading")}</p>
        )}
      </main>
    );
  }
  return (
    <SessionContext value={session}>
      <LiveProvider client={client}>
        <Shell />
      </LiveProvider>
    </SessionContext>
  );
}

function Shell() {
  const { t } = useI18n();
  const pathname = usePathname();
  const route = parseRoute(pathname);
  const { user } = useSession();

  useEffect(() => {
    if (route.name === "home") navigate(homePath(user.role), { replace: true });
  }, [route.name, user.role]);

  return (
    <>
      <a className="skip-link" href="#main">
        {t("app.skip")}
      </a>
      <Header route={route} />
      <main id="main" tabIndex={-1}>
        {route.name === "upload" && <UploadPage />}
        {route.name === "cases" && <CasesPage caseId={route.caseId} />}
        {route.name === "worklist" && <WorklistPage />}
        {route.name === "reading" && <ReadingPage caseId={route.caseId} />}
        {route.name === "control" && <ControlPage />}
        {route.name === "admin" && <AdminPage />}
        {route.name === "viewer" && <ViewerPage studyUid={route.studyUid} />}
        {route.name === "not-found" && <NotFoundPage />}
      </main>
    </>
  );
}
