// #/datanets/new — create a datanet: a signed `CreateDatanet` (docs/API.md).

import * as api from '../api.js';
import * as signer from '../signer.js';
import * as eip712 from '../eip712.js';
import { hashHex } from '../blake3.js';
import { domain } from '../context.js';
import { renderMarkdown } from '../markdown.js';
import { h, mount, pageHeader, errorBox, needSignIn, toast, card, tagChips } from '../ui.js';

export const SLUG_RE = /^[a-z0-9][a-z0-9-]{1,62}$/;

/** Tags as the node stores them: trimmed, lowercase, no empties or repeats. */
export function parseTags(text) {
  const out = [];
  for (const t of String(text).split(',')) {
    const v = t.trim().toLowerCase();
    if (v && !out.includes(v)) out.push(v);
  }
  return out;
}

export function slugify(name) {
  return String(name)
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63);
}

export function validateTags(tags) {
  if (tags.length > 32) return 'At most 32 tags.';
  const long = tags.find((t) => t.length > 64);
  return long ? `The tag “${long.slice(0, 20)}…” is longer than 64 characters.` : null;
}

export async function render(ctx) {
  const header = pageHeader({
    title: 'New datanet',
    subtitle: 'A datanet is a versioned dataset. You become its owner: you review what contributors upload.',
    crumbs: [{ label: 'Datanets', href: '#/datanets' }, { label: 'New' }],
  });
  if (!signer.address()) {
    ctx.mount(header, needSignIn('create a datanet'));
    return;
  }

  let slugEdited = false;
  const f = {
    name: h('input', { name: 'name', required: true, maxlength: 200, placeholder: 'Medical QA', autocomplete: 'off' }),
    slug: h('input', { name: 'slug', required: true, maxlength: 63, placeholder: 'med-qa', autocomplete: 'off', spellcheck: 'false' }),
    summary: h('input', { name: 'summary', maxlength: 500, placeholder: 'One line about what this data is for' }),
    description: h('textarea', { name: 'description', rows: 10, placeholder: '# About\n\nWhat belongs here, what does not, the format you expect…' }),
    tags: h('input', { name: 'tags', placeholder: 'health, qa, english', autocomplete: 'off' }),
    kind: h('select', { name: 'kind' }, ['text', 'image', 'audio'].map((k) => h('option', { value: k }, k))),
    private: h('input', { name: 'private', id: 'create-private', type: 'checkbox' }),
  };
  const slugHint = h('span', { class: 'hint' }, 'Lowercase letters, digits and dashes; 2–63 characters. It is the datanet’s permanent address.');
  const tagPreview = h('div', { class: 'tag-preview' });
  const preview = h('div', { class: 'markdown preview', hidden: true });
  const previewBtn = h('button', { type: 'button', class: 'btn btn-small btn-ghost' }, 'Preview');
  const errors = h('div', { class: 'form-errors' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'create-submit' }, 'Sign & create');

  f.name.addEventListener('input', () => {
    if (!slugEdited) f.slug.value = slugify(f.name.value);
    checkSlug();
  });
  f.slug.addEventListener('input', () => {
    slugEdited = true;
    checkSlug();
  });
  f.tags.addEventListener('input', () => mount(tagPreview, tagChips(parseTags(f.tags.value))));
  mount(tagPreview, tagChips([]));
  previewBtn.addEventListener('click', () => {
    const show = preview.hidden;
    preview.hidden = !show;
    f.description.hidden = show;
    previewBtn.textContent = show ? 'Edit' : 'Preview';
    if (show) preview.innerHTML = renderMarkdown(f.description.value) || '<p class="muted">Nothing to preview.</p>';
  });

  function checkSlug() {
    const ok = !f.slug.value || SLUG_RE.test(f.slug.value);
    f.slug.classList.toggle('invalid', !ok);
    slugHint.classList.toggle('hint-error', !ok);
    return ok;
  }

  const form = h(
    'form',
    { class: 'form', id: 'create-form', novalidate: true, onSubmit: (e) => (e.preventDefault(), create()) },
    field('Name', f.name, null, true),
    field('Slug', f.slug, slugHint, true),
    field('Summary', f.summary, h('span', { class: 'hint' }, 'Shown in lists.')),
    h(
      'div',
      { class: 'field' },
      h('div', { class: 'label-row' }, h('span', { class: 'label' }, 'Description'), h('span', { class: 'hint' }, 'Markdown: headings, lists, code, links.'), previewBtn),
      f.description,
      preview,
    ),
    field('Tags', f.tags, h('span', { class: 'hint' }, 'Comma-separated.'), false, tagPreview),
    h(
      'div',
      { class: 'field-row' },
      field('Kind', f.kind, h('span', { class: 'hint' }, 'What the rows are.')),
      h(
        'label',
        { class: 'field checkbox' },
        f.private,
        h('span', {}, h('span', { class: 'label' }, 'Private'), h('span', { class: 'hint' }, 'Only the owner, reviewers and contributors you list can use it.')),
      ),
    ),
    errors,
    h(
      'div',
      { class: 'form-actions' },
      submit,
      h('a', { class: 'btn btn-ghost', href: '#/datanets' }, 'Cancel'),
      h('span', { class: 'muted small' }, `Signed as ${signer.current().username || signer.address()} (${signer.kind()}).`),
    ),
  );

  ctx.mount(header, card(null, form));
  f.name.focus();

  async function create() {
    mount(errors);
    const slug = f.slug.value.trim();
    const name = f.name.value.trim();
    const tags = parseTags(f.tags.value);
    const problems = [];
    if (!name) problems.push('Give the datanet a name.');
    if (!SLUG_RE.test(slug)) problems.push('The slug must be 2–63 characters: lowercase letters, digits and dashes, not starting with a dash.');
    const tagProblem = validateTags(tags);
    if (tagProblem) problems.push(tagProblem);
    if (problems.length) {
      mount(errors, h('div', { class: 'alert alert-error' }, problems.map((p) => h('div', {}, p))));
      return;
    }
    const description = f.description.value;
    const body = {
      slug,
      name,
      summary: f.summary.value.trim(),
      description,
      tags,
      kind: f.kind.value,
      private: f.private.checked,
    };
    submit.disabled = true;
    submit.textContent = 'Signing…';
    try {
      const td = eip712.createDatanet(await domain(), {
        slug,
        name,
        summary: body.summary,
        descriptionHash: hashHex(description),
        tags,
        kind: body.kind,
        isPrivate: body.private,
      });
      const auth = await signer.authFor(td);
      submit.textContent = 'Creating…';
      const d = await api.createDatanet({ ...body, auth });
      toast(`Datanet “${d.name}” created`, 'ok');
      ctx.navigate(`#/datanets/${encodeURIComponent(d.slug)}`);
    } catch (e) {
      mount(errors, errorBox(e, { title: 'The datanet was not created' }));
    } finally {
      submit.disabled = false;
      submit.textContent = 'Sign & create';
    }
  }
}

function field(label, input, hint, required, extra) {
  return h('label', { class: 'field' }, h('span', { class: 'label' }, label, required ? h('span', { class: 'req' }, ' *') : null), input, hint, extra);
}
