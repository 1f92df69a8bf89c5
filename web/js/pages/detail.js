// #/datanets/SLUG — a datanet: description, details, versions, edit history; the owner edits
// summary/description/tags here (signed `EditDatanet`).

import * as api from '../api.js';
import * as signer from '../signer.js';
import * as eip712 from '../eip712.js';
import { hashHex } from '../blake3.js';
import { domain, isOwner, canReview } from '../context.js';
import { renderMarkdown } from '../markdown.js';
import { h, mount, errorBox, card, tagChips, addrEl, hashEl, dateEl, fmtNum, fmtDate, toast, empty, loading, modal, badge } from '../ui.js';
import { datanetHeader } from './common.js';
import { parseTags, validateTags } from './new.js';

export async function render(ctx) {
  const slug = ctx.params.slug;
  const [d, versions] = await Promise.all([api.datanet(slug), api.versions(slug)]);
  const base = `#/datanets/${encodeURIComponent(d.slug)}`;
  const me = signer.address();
  const owner = isOwner(d);

  const actions = [
    h('a', { class: 'btn btn-primary', href: `${base}/contribute` }, 'Contribute'),
    canReview(d) ? h('a', { class: 'btn', href: `${base}/review` }, d.pending_count ? `Review ${d.pending_count} pending` : 'Review queue') : null,
    owner ? h('button', { class: 'btn', type: 'button', id: 'edit-button', onClick: () => edit() }, 'Edit') : null,
  ];

  const descBody = h('div', { class: 'markdown', id: 'description' });
  descBody.innerHTML = d.description.trim() ? renderMarkdown(d.description) : '<p class="muted">No description yet.</p>';
  const descCard = card('Description', descBody);

  const side = h(
    'aside',
    { class: 'side' },
    card(
      'Details',
      h(
        'dl',
        { class: 'kv' },
        kv('Slug', h('code', {}, d.slug)),
        kv('Kind', d.kind),
        kv('Visibility', d.visibility),
        kv('Owner', addrEl(d.owner, me)),
        kv('Reviewers', d.reviewers.length ? h('div', { class: 'addr-list' }, d.reviewers.map((a) => addrEl(a, me))) : h('span', { class: 'muted' }, 'owner only')),
        d.visibility === 'private' || d.contributors.length
          ? kv('Contributors', d.contributors.length ? h('div', { class: 'addr-list' }, d.contributors.map((a) => addrEl(a, me))) : h('span', { class: 'muted' }, 'none listed'))
          : null,
        owner ? kv('', h('button', { class: 'btn btn-small', type: 'button', id: 'roles-button', onClick: () => editRoles() }, 'Manage roles…')) : null,
        kv('Tags', tagChips(d.tags, (t) => ctx.navigate(`#/datanets?tag=${encodeURIComponent(t)}`))),
        kv('Created', h('span', { title: fmtDate(d.created_at) }, fmtDate(d.created_at))),
        kv('Updated', dateEl(d.updated_at)),
      ),
    ),
    card(
      'Data',
      h(
        'div',
        { class: 'stat-grid' },
        bigStat('latest version', d.latest_version ? `v${d.latest_version}` : '—', d.latest_version ? `${base}/rows` : null),
        bigStat('rows', fmtNum(d.row_count), d.latest_version ? `${base}/rows` : null),
        bigStat('contributions', fmtNum(d.contribution_count)),
        bigStat('pending', fmtNum(d.pending_count), `${base}/review`),
      ),
      h(
        'div',
        { class: 'link-list' },
        h('a', { href: `${base}/rows` }, 'Browse rows →'),
        h('a', { href: `${base}/diff` }, 'Compare versions →'),
        h('a', { href: `${base}/review` }, 'Review queue →'),
      ),
    ),
  );

  const main = h('div', { class: 'main-stack' }, descCard, versionsCard(d, versions.items), editsCard(slug));
  ctx.mount(datanetHeader(d, 'overview', { actions }), h('div', { class: 'two-col' }, main, side));

  const rolesError = h('div', { id: 'roles-error' });
  side.firstChild.appendChild(rolesError);

  async function editRoles() {
    const answer = await modal({
      title: 'Reviewers and contributors',
      text: 'One address per line. Reviewers may accept, reject and take rows down. Contributors matter for a private datanet: only they (and the owner and reviewers) may contribute. You sign the new lists.',
      fields: [
        { name: 'reviewers', label: 'Reviewers', type: 'textarea', value: d.reviewers.join('\n'), placeholder: '0x…' },
        { name: 'contributors', label: 'Contributors', type: 'textarea', value: d.contributors.join('\n'), placeholder: '0x…' },
      ],
      confirmLabel: 'Sign & save',
    });
    if (!answer) return;
    mount(rolesError);
    const parse = (text) => [...new Set(text.split(/[\s,]+/).map((a) => a.trim().toLowerCase()).filter(Boolean))];
    const reviewers = parse(answer.reviewers);
    const contributors = parse(answer.contributors);
    const bad = [...reviewers, ...contributors].find((a) => !/^0x[0-9a-f]{40}$/.test(a));
    if (bad) {
      mount(rolesError, errorBox(new Error(`“${bad}” is not an Ethereum address (0x and 40 hex digits).`), { title: 'The roles were not saved' }));
      return;
    }
    try {
      const td = eip712.setRoles(await domain(), { datanet: d.slug, reviewers, contributors });
      const auth = await signer.authFor(td);
      await api.setRoles(d.slug, { reviewers, contributors, auth });
      toast('Roles saved', 'ok');
      ctx.reload();
    } catch (e) {
      mount(rolesError, errorBox(e, { title: 'The roles were not saved' }));
    }
  }

  function edit() {
    const summary = h('input', { name: 'summary', value: d.summary, maxlength: 500 });
    const description = h('textarea', { name: 'description', rows: 12, value: d.description });
    const tags = h('input', { name: 'tags', value: d.tags.join(', ') });
    const errors = h('div', {});
    const save = h('button', { type: 'submit', class: 'btn btn-primary', id: 'edit-save' }, 'Sign & save');
    const form = h(
      'form',
      { class: 'form', id: 'edit-form', onSubmit: (e) => (e.preventDefault(), submit()) },
      h('label', { class: 'field' }, h('span', { class: 'label' }, 'Summary'), summary),
      h('label', { class: 'field' }, h('span', { class: 'label' }, 'Description'), description, h('span', { class: 'hint' }, 'Markdown.')),
      h('label', { class: 'field' }, h('span', { class: 'label' }, 'Tags'), tags, h('span', { class: 'hint' }, 'Comma-separated.')),
      errors,
      h('div', { class: 'form-actions' }, save, h('button', { type: 'button', class: 'btn btn-ghost', onClick: () => ctx.reload() }, 'Cancel')),
    );
    const editCard = card('Edit datanet', form);
    descCard.replaceWith(editCard);
    summary.focus();

    async function submit() {
      mount(errors);
      const t = parseTags(tags.value);
      const problem = validateTags(t);
      if (problem) {
        mount(errors, h('div', { class: 'alert alert-error' }, problem));
        return;
      }
      const body = { summary: summary.value.trim(), description: description.value, tags: t };
      save.disabled = true;
      save.textContent = 'Signing…';
      try {
        const td = eip712.editDatanet(await domain(), {
          datanet: d.slug,
          summary: body.summary,
          descriptionHash: hashHex(body.description),
          tags: t,
        });
        const auth = await signer.authFor(td);
        save.textContent = 'Saving…';
        await api.editDatanet(d.slug, { ...body, auth });
        toast('Saved', 'ok');
        ctx.reload();
      } catch (e) {
        mount(errors, errorBox(e, { title: 'The changes were not saved' }));
        save.disabled = false;
        save.textContent = 'Sign & save';
      }
    }
  }
}

function kv(k, v) {
  return [h('dt', {}, k), h('dd', {}, v)];
}

function bigStat(label, value, href) {
  const v = href ? h('a', { href }, value) : value;
  return h('div', { class: 'big-stat' }, h('div', { class: 'big-stat-value' }, v), h('div', { class: 'big-stat-label' }, label));
}

// Where the version's root stands in DatanetRegistry on the ledger.
const LEDGER_STATES = {
  confirmed: ['ok', 'Its root is in DatanetRegistry'],
  sent: ['info', 'Sent to the ledger, waiting for its block'],
  queued: ['info', 'The node will publish it shortly'],
  failed: ['error', 'Publishing failed'],
  off: ['', 'This node has no operator key, so it does not publish versions'],
};

function ledgerCell(l) {
  if (!l) return h('span', { class: 'muted' }, '—');
  const [kind, title] = LEDGER_STATES[l.status] || ['', l.status];
  const b = badge(l.status === 'confirmed' ? `block ${fmtNum(l.block)}` : l.status, kind);
  b.title = l.error ? `${title}: ${l.error}` : title;
  return l.tx_hash ? h('a', { href: `#/ledger/tx/${l.tx_hash}`, class: 'ledger-link' }, b) : b;
}

function versionsCard(d, versions) {
  const base = `#/datanets/${encodeURIComponent(d.slug)}`;
  if (!versions.length) {
    return card(
      'Versions',
      empty('No versions yet', 'A version is made each time a reviewer accepts contributions (or takes rows down).', h('a', { class: 'btn btn-small', href: `${base}/contribute` }, 'Contribute a file')),
    );
  }
  return card(
    'Versions',
    h(
      'table',
      { class: 'table', id: 'versions' },
      h(
        'thead',
        {},
        h('tr', {}, h('th', {}, 'Version'), h('th', {}, 'Created'), h('th', {}, 'By'), h('th', { class: 'col-num' }, 'Added'), h('th', { class: 'col-num' }, 'Removed'), h('th', { class: 'col-num' }, 'Rows'), h('th', {}, 'Root'), h('th', {}, 'Ledger'), h('th', {}, '')),
      ),
      h(
        'tbody',
        {},
        versions.map((v) =>
          h(
            'tr',
            { dataset: { version: String(v.number) } },
            h('td', {}, h('a', { href: `${base}/rows?version=${v.number}`, class: 'strong' }, `v${v.number}`), v.reason ? h('div', { class: 'muted small reason', title: v.reason }, `“${v.reason}”`) : null),
            h('td', {}, dateEl(v.created_at)),
            h('td', {}, addrEl(v.created_by, signer.address())),
            h('td', { class: 'col-num plus' }, v.rows_added ? `+${fmtNum(v.rows_added)}` : '0'),
            h('td', { class: 'col-num minus' }, v.rows_removed ? `−${fmtNum(v.rows_removed)}` : '0'),
            h('td', { class: 'col-num' }, fmtNum(v.row_count)),
            h('td', {}, hashEl(v.root)),
            h('td', { class: 'col-ledger' }, ledgerCell(v.ledger)),
            h('td', { class: 'col-actions' }, v.parent ? h('a', { href: `${base}/diff?from=${v.parent}&to=${v.number}` }, 'diff') : h('span', { class: 'muted small' }, 'first')),
          ),
        ),
      ),
    ),
  );
}

function editsCard(slug) {
  const body = h('div', {}, loading('Loading edit history…'));
  api.edits(slug).then(
    (r) => {
      if (!r.items.length) {
        mount(body, h('p', { class: 'muted small' }, 'The metadata has not been edited since the datanet was created.'));
        return;
      }
      mount(
        body,
        h(
          'ul',
          { class: 'edit-list' },
          [...r.items].reverse().map((e) => {
            const changed = ['summary', 'description', 'tags'].filter((k) => JSON.stringify(e.before[k]) !== JSON.stringify(e.after[k]));
            return h(
              'li',
              {},
              h('span', { class: 'strong' }, `Edit ${e.number}`),
              ' · ',
              dateEl(e.at),
              ' · by ',
              addrEl(e.by, signer.address()),
              h('div', { class: 'muted small' }, changed.length ? `changed ${changed.join(', ')}` : 'no change'),
            );
          }),
        ),
      );
    },
    (e) => mount(body, errorBox(e, { title: 'Could not load the edit history' })),
  );
  return card('Edit history', body);
}
