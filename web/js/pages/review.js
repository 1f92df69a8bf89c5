// #/datanets/SLUG/review — the review queue: pending contributions with a preview of their
// rows and the original file; select several, accept or reject them with a reason (signed
// `Review`). Accepting makes a new version. `?status=accepted|rejected` shows the decided ones.

import * as api from '../api.js';
import * as signer from '../signer.js';
import * as eip712 from '../eip712.js';
import { domain, canReview } from '../context.js';
import { h, mount, card, errorBox, loading, empty, notice, addrEl, dateEl, fmtBytes, fmtNum, statusBadge, modal, toast, signInHref } from '../ui.js';
import { datanetHeader, rowText } from './common.js';

const PAGE = 50;
const PREVIEW = 20;

export async function render(ctx) {
  const slug = ctx.params.slug;
  const status = ['pending', 'accepted', 'rejected'].includes(ctx.query.get('status')) ? ctx.query.get('status') : 'pending';
  const d = await api.datanet(slug);
  const base = `#/datanets/${encodeURIComponent(d.slug)}`;
  const me = signer.address();
  const allowed = canReview(d);
  const pending = status === 'pending';

  const selected = new Set();
  const result = h('div', { id: 'review-result' });
  const acceptBtn = h('button', { type: 'button', class: 'btn btn-primary', id: 'accept-selected', disabled: true, onClick: () => decide(true) }, 'Accept');
  const rejectBtn = h('button', { type: 'button', class: 'btn btn-danger', id: 'reject-selected', disabled: true, onClick: () => decide(false) }, 'Reject…');
  const selCount = h('span', { class: 'muted small' }, 'Nothing selected');
  const allBox = h('input', { type: 'checkbox', id: 'select-all', attrs: { 'aria-label': 'Select all' }, disabled: !allowed || !pending });
  const body = h('tbody');
  const more = h('div', { class: 'more' });
  const checkboxes = new Map();

  const statusTabs = h(
    'div',
    { class: 'segmented' },
    ['pending', 'accepted', 'rejected'].map((s) => h('a', { href: `${base}/review${s === 'pending' ? '' : `?status=${s}`}`, class: ['seg', s === status && 'active'] }, s[0].toUpperCase() + s.slice(1))),
  );

  const permission = !me
    ? notice('Sign in as the owner or a reviewer to accept or reject contributions.', 'info', h('a', { class: 'btn btn-small btn-primary', href: signInHref() }, 'Sign in'))
    : !allowed
      ? notice('You can look at the queue, but only the owner and the reviewers of this datanet can accept or reject.', 'info')
      : null;

  const table = h(
    'table',
    { class: 'table review-table', id: 'review-table' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        pending ? h('th', { class: 'col-check' }, allBox) : null,
        h('th', {}, 'File'),
        h('th', {}, 'Contributor'),
        h('th', { class: 'col-num' }, 'Rows'),
        h('th', { class: 'col-num' }, 'Size'),
        h('th', {}, pending ? 'Uploaded' : 'Decided'),
        pending ? null : h('th', {}, 'Outcome'),
        h('th', { class: 'col-actions' }, ''),
      ),
    ),
    body,
  );

  ctx.mount(
    datanetHeader(d, 'review', { title: `Review · ${d.name}`, subtitle: 'Accepted contributions become a new version of the datanet; rejected ones stay out, with your reason.' }),
    permission,
    result,
    card(
      null,
      h(
        'div',
        { class: 'toolbar' },
        statusTabs,
        h('span', { class: 'tabs-spacer' }),
        pending && allowed ? [selCount, acceptBtn, rejectBtn] : null,
      ),
      table,
      more,
    ),
  );

  allBox.addEventListener('change', () => {
    for (const [id, box] of checkboxes) {
      box.checked = allBox.checked;
      if (allBox.checked) selected.add(id);
      else selected.delete(id);
    }
    updateSelection();
  });

  function updateSelection() {
    const n = selected.size;
    acceptBtn.disabled = rejectBtn.disabled = n === 0;
    acceptBtn.textContent = n ? `Accept ${n}` : 'Accept';
    rejectBtn.textContent = n ? `Reject ${n}…` : 'Reject…';
    selCount.textContent = n ? `${n} selected` : 'Nothing selected';
    allBox.checked = n > 0 && n === checkboxes.size;
    allBox.indeterminate = n > 0 && n < checkboxes.size;
  }

  let shown = 0;
  async function load(cursor) {
    mount(more, loading());
    let page;
    try {
      page = await api.contributions(slug, { status, cursor, limit: PAGE });
    } catch (e) {
      mount(more, errorBox(e, { title: 'Could not load the contributions', retry: () => load(cursor) }));
      return;
    }
    for (const c of page.items) addRow(c);
    shown += page.items.length;
    if (!shown) {
      mount(
        more,
        pending
          ? empty('The queue is empty', 'Nothing is waiting for review.', h('a', { class: 'btn btn-small', href: `${base}/contribute` }, 'Contribute a file'))
          : empty(`No ${status} contributions`, null),
      );
    } else if (page.next_cursor) {
      mount(more, h('button', { class: 'btn', type: 'button', onClick: () => load(page.next_cursor) }, 'Load more'));
    } else {
      mount(more);
    }
    updateSelection();
  }

  function addRow(c) {
    const preview = h('td', { colspan: 7, class: 'preview-cell' });
    const previewRow = h('tr', { class: 'preview-row', hidden: true }, preview);
    let previewLoaded = false;
    const toggle = h(
      'button',
      {
        type: 'button',
        class: 'btn btn-small btn-ghost preview-toggle',
        attrs: { 'aria-expanded': 'false' },
        onClick: () => {
          const open = previewRow.hidden;
          previewRow.hidden = !open;
          toggle.setAttribute('aria-expanded', String(open));
          toggle.textContent = open ? 'Hide rows' : 'Preview rows';
          if (open && !previewLoaded) {
            previewLoaded = true;
            loadPreview(c, preview);
          }
        },
      },
      'Preview rows',
    );
    let box = null;
    if (pending) {
      box = h('input', { type: 'checkbox', class: 'select-contribution', disabled: !allowed, attrs: { 'aria-label': `Select ${c.file_name}` } });
      box.addEventListener('change', () => {
        if (box.checked) selected.add(c.id);
        else selected.delete(c.id);
        updateSelection();
      });
      checkboxes.set(c.id, box);
    }
    const tr = h(
      'tr',
      { class: 'contribution', dataset: { id: String(c.id), file: c.file_name } },
      pending ? h('td', { class: 'col-check' }, box) : null,
      h(
        'td',
        {},
        h('div', { class: 'file-name' }, c.file_name),
        h('div', { class: 'muted small' }, `#${c.id} · ${c.format} · `, h('a', { href: api.blobUrl(c.file_hash), target: '_blank', rel: 'noopener', class: 'blob-link', title: `blake3 ${c.file_hash}` }, 'original file')),
      ),
      h('td', {}, addrEl(c.contributor, me)),
      h('td', { class: 'col-num' }, fmtNum(c.row_count)),
      h('td', { class: 'col-num' }, fmtBytes(c.size)),
      h('td', {}, dateEl(pending ? c.created_at : c.reviewed_at || c.created_at), !pending && c.reviewed_by ? h('div', { class: 'muted small' }, 'by ', addrEl(c.reviewed_by, me)) : null),
      pending
        ? null
        : h(
            'td',
            {},
            statusBadge(c.status),
            c.version ? h('a', { class: 'small', href: `${base}/rows?version=${c.version}` }, ` in v${c.version}`) : null,
            c.reason ? h('div', { class: 'muted small reason' }, `“${c.reason}”`) : null,
          ),
      h('td', { class: 'col-actions' }, toggle),
    );
    body.append(tr, previewRow);
  }

  async function loadPreview(c, cell) {
    const list = h('ol', { class: 'preview-list' });
    const moreBtn = h('div', {});
    mount(cell, h('div', { class: 'preview-head muted small' }, `Rows of ${c.file_name} (${fmtNum(c.row_count)})`), list, moreBtn);
    const page = async (cursor) => {
      mount(moreBtn, loading('Loading rows…'));
      try {
        const r = await api.contributionRows(c.id, { cursor, limit: PREVIEW });
        for (const row of r.items) list.appendChild(h('li', { value: String(row.ordinal + 1) }, rowText(row.text)));
        mount(moreBtn, r.next_cursor ? h('button', { type: 'button', class: 'btn btn-small', onClick: () => page(r.next_cursor) }, 'More rows') : null);
      } catch (e) {
        mount(moreBtn, errorBox(e, { title: 'Could not load the rows' }));
      }
    };
    page(undefined);
  }

  async function decide(accept) {
    const ids = [...selected].sort((a, b) => a - b);
    if (!ids.length) return;
    const n = ids.length;
    const answer = await modal({
      title: accept ? `Accept ${n} contribution${n === 1 ? '' : 's'}` : `Reject ${n} contribution${n === 1 ? '' : 's'}`,
      text: accept
        ? 'Their rows go into a new version of the datanet. You sign this decision.'
        : 'Their rows stay out of the datanet. The contributor sees your reason. You sign this decision.',
      fields: [{ name: 'reason', label: 'Reason', type: 'textarea', required: !accept, placeholder: accept ? 'Optional' : 'Why these files are not accepted' }],
      confirmLabel: accept ? 'Sign & accept' : 'Sign & reject',
      danger: !accept,
    });
    if (!answer) return;
    acceptBtn.disabled = rejectBtn.disabled = true;
    mount(result, loading(accept ? 'Accepting…' : 'Rejecting…'));
    try {
      const td = eip712.review(await domain(), { datanet: d.slug, contributions: ids, accept, reason: answer.reason });
      const auth = await signer.authFor(td);
      const r = await api.review(d.slug, { contributions: ids, accept, reason: answer.reason, auth });
      const v = r.version;
      mount(
        result,
        h(
          'div',
          { class: 'alert alert-ok', id: 'review-outcome', dataset: { version: v ? String(v.number) : '' } },
          h(
            'div',
            { class: 'alert-msg' },
            accept
              ? v
                ? `Accepted ${n} contribution${n === 1 ? '' : 's'}: version ${v.number} adds ${fmtNum(v.rows_added)} row${v.rows_added === 1 ? '' : 's'} (${fmtNum(v.row_count)} in total).`
                : `Accepted ${n} contribution${n === 1 ? '' : 's'}.`
              : `Rejected ${n} contribution${n === 1 ? '' : 's'}${answer.reason ? `: “${answer.reason}”` : ''}.`,
          ),
          v
            ? h(
                'div',
                { class: 'alert-actions' },
                h('a', { class: 'btn btn-small', href: `${base}/rows?version=${v.number}` }, `Browse version ${v.number}`),
                v.parent ? h('a', { class: 'btn btn-small', href: `${base}/diff?from=${v.parent}&to=${v.number}` }, `Diff v${v.parent} → v${v.number}`) : null,
              )
            : null,
        ),
      );
      toast(accept ? 'Accepted' : 'Rejected', 'ok');
      // refresh the list and the header counts, keeping the outcome
      const outcome = result.firstChild;
      await ctx.reload();
      const fresh = document.getElementById('review-result');
      if (fresh && outcome) mount(fresh, outcome);
    } catch (e) {
      mount(result, errorBox(e, { title: accept ? 'The contributions were not accepted' : 'The contributions were not rejected' }));
      updateSelection();
    }
  }

  await load(undefined);
}
