import { ApiError, request, session } from '../api';
import { h, notice } from '../dom';

/** Asks once for the admin token; it is checked against the API, then kept in this tab only. */
export function loginView(reason: string | null, onSignedIn: () => void): HTMLElement {
  const input = h('input', {
    id: 'token',
    name: 'token',
    type: 'password',
    required: true,
    autocomplete: 'current-password',
    spellcheck: 'false',
    'aria-describedby': 'token-help',
  });
  const message = h('div', { class: 'message' }, reason !== null ? notice('info', reason) : null);
  const submit = h('button', { type: 'submit' }, 'Sign in');
  const form = h(
    'form',
    {
      class: 'login card',
      onsubmit: async (event: SubmitEvent) => {
        event.preventDefault();
        const token = input.value.trim();
        submit.disabled = true;
        try {
          await request('/api/sources?limit=1', { token });
          session.signIn(token);
          onSignedIn();
        } catch (error) {
          const text =
            error instanceof ApiError && error.signedOut
              ? 'That token was refused. Check it and try again.'
              : `Could not reach Intake: ${error instanceof Error ? error.message : String(error)}`;
          message.replaceChildren(notice('error', text));
          input.focus();
        } finally {
          submit.disabled = false;
        }
      },
    },
    h('h1', null, 'Intake'),
    h('p', null, 'Sign in with the admin token to manage sources and watch events arrive.'),
    message,
    h('label', { for: 'token' }, 'Admin token'),
    input,
    h(
      'p',
      { id: 'token-help', class: 'help' },
      'It was printed when the server first started; ',
      h('code', null, 'npx intake token'),
      ' prints it again. It is kept in this browser tab only, until you close the tab or sign out.',
    ),
    submit,
  );
  return h('main', { id: 'main', class: 'login-page' }, form);
}
