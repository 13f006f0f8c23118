/** The username and password inputs, as the sign-in page and the signature dialog both ask for
 * them: the same names and autocomplete hints, so a password manager treats both alike. */
export function CredentialFields({
  idPrefix,
  labels,
  username,
  password,
  onUsername,
  onPassword,
  describedBy,
}: {
  idPrefix: string;
  labels: { username: string; password: string };
  username: string;
  password: string;
  onUsername: (value: string) => void;
  onPassword: (value: string) => void;
  /** The id of an error message the inputs refer to, when there is one. */
  describedBy?: string | undefined;
}) {
  return (
    <>
      <div className="field">
        <label htmlFor={`${idPrefix}-username`}>{labels.username}</label>
        <input
          id={`${idPrefix}-username`}
          type="text"
          name="username"
          autoComplete="username"
          autoCapitalize="none"
          spellCheck={false}
          required
          value={username}
          onChange={(e) => onUsername(e.target.value)}
          aria-describedby={describedBy}
        />
      </div>
      <div className="field">
        <label htmlFor={`${idPrefix}-password`}>{labels.password}</label>
        <input
          id={`${idPrefix}-password`}
          type="password"
          name="password"
          autoComplete="current-password"
          required
          value={password}
          onChange={(e) => onPassword(e.target.value)}
          aria-describedby={describedBy}
        />
      </div>
    </>
  );
}
