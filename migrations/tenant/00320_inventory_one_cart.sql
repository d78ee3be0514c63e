-- One cart per buyer: a buyer's holds made through the storefront's hold
-- path are their cart (cart = true), and a buyer has at most one active cart
-- per event. A second "new hold" from another tab joins the cart instead;
-- this index is what makes two concurrent ones unable to both insert.
-- Resale reservations, waiting-list offers and staff holds are not carts
-- (cart = false) and stay holds of their own.

-- +goose Up
ALTER TABLE inv_holds ADD COLUMN cart boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX inv_holds_one_cart ON inv_holds (event_id, buyer_id) WHERE status = 'active' AND cart;

-- +goose Down
DROP INDEX inv_holds_one_cart;
ALTER TABLE inv_holds DROP COLUMN cart;
