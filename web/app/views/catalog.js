// Browse, filter, sort and search the catalog; admins create, edit and delete products.

import * as api from "../api.js";
import { alertBox, field, h, onSubmit, replace, select, showError, table, toast } from "../dom.js";

const SORTS = [
  ["created_at", "Newest"],
  ["name", "Name"],
  ["price", "Price"],
  ["stock", "Stock"],
];
const ORDERS = [
  ["desc", "Descending"],
  ["asc", "Ascending"],
];
const SIZES = [
  ["5", "5"],
  ["10", "10"],
  ["20", "20"],
  ["50", "50"],
];
const PRODUCT_FIELDS = [
  ["name", "Name", { type: "text", required: true, maxlength: "255" }],
  ["sku", "SKU", { type: "text", required: true, maxlength: "64" }],
  ["price", "Price", { type: "text", inputmode: "decimal", required: true }],
  ["stock", "Stock", { type: "number", min: "0", step: "1" }],
  ["category", "Category", { type: "text", maxlength: "100" }],
  ["description", "Description", { type: "text", maxlength: "2000" }],
];

function productForm(product, onSaved, onCancel) {
  const fields = Object.fromEntries(
    PRODUCT_FIELDS.map(([name, label, attrs]) => {
      const value = product && product[name] !== undefined ? String(product[name]) : "";
      return [name, field(label, h("input", { ...attrs, value, name }))];
    }),
  );
  const alert = alertBox();
  const save = h("button", { type: "submit" }, product ? "Save product" : "Create product");
  return h(
    "form",
    {
      class: "card",
      "aria-label": product ? `Edit ${product.name}` : "New product",
      noValidate: true,
      onsubmit: onSubmit(save, async () => {
        alert.show("");
        Object.values(fields).forEach((entry) => entry.setError(""));
        const body = {};
        for (const [name, entry] of Object.entries(fields)) {
          const value = entry.input.value.trim();
          if (value === "" && name !== "description") continue;
          body[name] = name === "stock" ? Number(value) : value;
        }
        try {
          const saved = product
            ? await api.put(`/products/${encodeURIComponent(product.id)}`, body)
            : await api.post("/products", body);
          toast(`${saved.name} saved`);
          onSaved(saved);
        } catch (error) {
          showError(error, fields, alert);
        }
      }),
    },
    h("h3", {}, product ? `Edit ${product.name}` : "New product"),
    h(
      "div",
      { class: "grid" },
      Object.values(fields).map((entry) => entry.wrap),
    ),
    alert.node,
    save,
    onCancel
      ? h("button", { type: "button", class: "secondary", onclick: onCancel }, "Cancel")
      : null,
  );
}

export function renderCatalog(view) {
  const admin = api.isAdmin();
  const search = field("Search", h("input", { type: "search", maxlength: "100" }));
  const category = field("Category", h("input", { type: "text", maxlength: "100" }));
  const minPrice = field("Minimum price", h("input", { type: "number", min: "0", step: "0.01" }));
  const maxPrice = field("Maximum price", h("input", { type: "number", min: "0", step: "0.01" }));
  const inStock = h("input", { type: "checkbox", id: "in-stock" });
  const sortBy = field("Sort by", select(SORTS, "created_at"));
  const order = field("Order", select(ORDERS, "desc"));
  const size = field("Page size", select(SIZES, "10"));
  const alert = alertBox();
  const results = h("div", { "aria-live": "polite" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages" });
  const editor = h("div", {});
  let page = 1;
  let loads = 0;

  async function load() {
    const ticket = ++loads;
    alert.show("");
    const query = {
      page,
      page_size: size.input.value,
      category: category.input.value.trim(),
      min_price: minPrice.input.value,
      max_price: maxPrice.input.value,
      in_stock_only: inStock.checked,
      sort_by: sortBy.input.value,
      sort_order: order.input.value,
    };
    const q = search.input.value.trim();
    let result;
    try {
      result = q
        ? await api.get("/products/search", { ...query, q })
        : await api.get("/products", query);
    } catch (error) {
      if (ticket === loads) alert.show(error.message);
      return;
    }
    if (ticket !== loads) return; // a newer query's answer wins
    const headers = ["Name", "Category", "Price", "Stock", "SKU"];
    if (admin) headers.push("Actions");
    replace(
      results,
      h("p", { class: "count" }, `${result.total} product${result.total === 1 ? "" : "s"}`),
      result.items.length
        ? table(
            "Products",
            headers,
            result.items.map((product) =>
              h(
                "tr",
                {},
                h("td", {}, product.name),
                h("td", {}, product.category || "—"),
                h("td", { class: "number" }, Number(product.price).toFixed(2)),
                h(
                  "td",
                  { class: "number" },
                  product.stock > 0 ? String(product.stock) : "0 (out of stock)",
                ),
                h("td", {}, product.sku),
                admin ? h("td", {}, actions(product)) : null,
              ),
            ),
          )
        : h("p", {}, "No products match."),
    );
    const pages = Math.max(1, result.total_pages);
    replace(
      pager,
      h(
        "button",
        { type: "button", class: "secondary", disabled: page <= 1, onclick: () => go(page - 1) },
        "Previous page",
      ),
      h("span", {}, ` Page ${result.page} of ${pages} `),
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          disabled: page >= pages,
          onclick: () => go(page + 1),
        },
        "Next page",
      ),
    );
  }

  function go(next) {
    page = next;
    load();
  }

  function actions(product) {
    return [
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          "aria-label": `Edit ${product.name}`,
          onclick: () => {
            replace(
              editor,
              productForm(
                product,
                () => {
                  replace(editor);
                  load();
                },
                () => replace(editor),
              ),
            );
            editor.querySelector("input").focus();
          },
        },
        "Edit",
      ),
      h(
        "button",
        {
          type: "button",
          class: "danger",
          "aria-label": `Delete ${product.name}`,
          onclick: async () => {
            if (!window.confirm(`Delete ${product.name}?`)) return;
            try {
              await api.del(`/products/${encodeURIComponent(product.id)}`);
              toast(`${product.name} deleted`);
              load();
            } catch (error) {
              alert.show(error.message);
            }
          },
        },
        "Delete",
      ),
    ];
  }

  const filters = h(
    "form",
    {
      class: "card filters",
      role: "search",
      onsubmit: (event) => {
        event.preventDefault();
        go(1);
      },
    },
    h(
      "div",
      { class: "grid" },
      search.wrap,
      category.wrap,
      minPrice.wrap,
      maxPrice.wrap,
      sortBy.wrap,
      order.wrap,
      size.wrap,
      h("div", { class: "field check" }, inStock, h("label", { for: "in-stock" }, "In stock only")),
    ),
    h("button", { type: "submit" }, "Apply"),
  );
  const creator = h("div", {});
  const freshForm = () =>
    replace(
      creator,
      productForm(null, () => {
        freshForm();
        load();
      }),
    );
  freshForm();
  view.append(
    h("h1", {}, "Catalog"),
    filters,
    alert.node,
    results,
    pager,
    admin
      ? h(
          "section",
          { "aria-labelledby": "manage" },
          h("h2", { id: "manage" }, "Manage products"),
          editor,
          creator,
        )
      : null,
  );
  load();
}
