from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from mobimart.catalog.domain import (
    BRAND_NAME_MAX,
    MAX_OPTIONS,
    MAX_PRICE_MINOR,
    MAX_STOCK,
    MAX_TAGS,
    MAX_VARIANTS,
    NAME_MAX,
    OPTION_MAX,
    TAG_MAX,
    ProductStatus,
    VariantSpec,
)
from mobimart.catalog.listing import Filters, Sort, option_choices
from mobimart.catalog.view import ProductView
from mobimart.web.schemas import MAX_ID, InputModel

Tags = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=TAG_MAX)]], Field(max_length=MAX_TAGS)
]


class VariantIn(InputModel):
    sku: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    options: dict[
        Annotated[str, Field(min_length=1, max_length=OPTION_MAX)],
        Annotated[str, Field(min_length=1, max_length=OPTION_MAX)],
    ] = Field(default_factory=dict, max_length=MAX_OPTIONS, description='{"colour": "red"}')
    price_minor: int = Field(gt=0, le=MAX_PRICE_MINOR, description="Price in minor units (fen)")
    stock: int = Field(0, ge=0, le=MAX_STOCK)

    def spec(self) -> VariantSpec:
        return VariantSpec(self.sku, self.price_minor, self.stock, dict(self.options))


class ProductIn(InputModel):
    """Either `price_minor` (and `stock`) for a product without options, or `variants`."""

    name: str = Field(min_length=1, max_length=NAME_MAX)
    description: str = Field("", max_length=5000)
    price_minor: int | None = Field(
        None, gt=0, le=MAX_PRICE_MINOR, description="Price in minor units (fen)"
    )
    stock: int = Field(0, ge=0, le=MAX_STOCK)
    variants: list[VariantIn] | None = Field(None, min_length=1, max_length=MAX_VARIANTS)
    category_id: int | None = Field(None, ge=1, le=MAX_ID)
    brand_id: int | None = Field(None, ge=1, le=MAX_ID)
    tags: Tags = Field(default_factory=list)
    publish: bool = False

    @model_validator(mode="after")
    def _price_or_variants(self) -> ProductIn:
        if (self.price_minor is None) == (self.variants is None):
            raise ValueError("give either price_minor or variants")
        return self


class ProductUpdate(InputModel):
    """Only the fields sent change."""

    name: str = Field(None, min_length=1, max_length=NAME_MAX)  # type: ignore[assignment]
    description: str = Field(None, max_length=5000)  # type: ignore[assignment]
    price_minor: int = Field(None, gt=0, le=MAX_PRICE_MINOR)  # type: ignore[assignment]
    stock: int = Field(None, ge=0, le=MAX_STOCK)  # type: ignore[assignment]
    category_id: int | None = Field(None, ge=1, le=MAX_ID)
    brand_id: int | None = Field(None, ge=1, le=MAX_ID)
    tags: Tags = None  # type: ignore[assignment]


class VariantsIn(InputModel):
    variants: list[VariantIn] = Field(min_length=1, max_length=MAX_VARIANTS)


class ProductOut(BaseModel):
    id: int
    shop_id: int
    merchant_id: int
    category_id: int | None
    brand_id: int | None
    name: str
    description: str
    tags: list[str]
    price_minor: int = Field(description="The lowest variant price")
    currency: str
    stock: int = Field(description="Stock of all variants")
    status: ProductStatus
    created_at: dt.datetime


class ShopOut(BaseModel):
    id: int
    merchant_id: int
    name: str
    description: str


class CategoryOut(BaseModel):
    id: int
    parent_id: int | None
    slug: str
    name_en: str
    name_zh: str


# --- what shoppers see -----------------------------------------------------------------------


class ProductCard(BaseModel):
    """A product in a listing."""

    id: int
    name: str
    price_minor: int
    currency: str
    image: str | None
    shop_id: int
    shop_name: str
    brand_id: int | None
    brand_name: str
    rating: float = Field(description="Average stars, 0 before the first rating")
    rating_count: int
    sales: int
    in_stock: bool

    @classmethod
    def of(cls, view: ProductView) -> ProductCard:
        return cls(
            id=view.id,
            name=view.name,
            price_minor=view.price_minor,
            currency=view.currency,
            image=view.image,
            shop_id=view.shop_id,
            shop_name=view.shop_name,
            brand_id=view.brand_id,
            brand_name=view.brand_name,
            rating=round(view.rating, 2),
            rating_count=view.rating_count,
            sales=view.sales,
            in_stock=view.stock > 0,
        )


class VariantOut(BaseModel):
    id: int
    sku: str
    options: dict[str, str]
    price_minor: int
    stock: int


class MediaOut(BaseModel):
    kind: str
    url: str


class CategoryRefOut(BaseModel):
    id: int
    slug: str
    name_en: str
    name_zh: str


class ProductDetail(ProductCard):
    """A product page: the card plus what a shopper needs to choose and buy."""

    description: str
    tags: list[str]
    brand_slug: str
    categories: list[CategoryRefOut] = Field(description="Root first")
    options: dict[str, list[str]]
    variants: list[VariantOut]
    media: list[MediaOut]

    @classmethod
    def of(cls, view: ProductView) -> ProductDetail:
        return cls(
            **ProductCard.of(view).model_dump(),
            description=view.description,
            tags=list(view.tags),
            brand_slug=view.brand_slug,
            categories=[CategoryRefOut(**vars(c)) for c in view.categories],
            options=view.options(),
            variants=[VariantOut(**vars(v)) for v in view.variants],
            media=[MediaOut(**vars(m)) for m in view.media],
        )


class NamedCount(BaseModel):
    id: int
    name: str
    count: int


class BrandCount(NamedCount):
    slug: str


class CategoryCount(CategoryRefOut):
    count: int


class ValueCount(BaseModel):
    value: str
    count: int


class OptionFacet(BaseModel):
    name: str
    values: list[ValueCount]


class PriceRange(BaseModel):
    min: int | None = Field(description="Lowest price in minor units, inclusive")
    max: int | None = Field(description="Highest price in minor units, inclusive")
    count: int


class RatingCount(BaseModel):
    stars: int = Field(description="This many stars and up")
    count: int


class FacetsOut(BaseModel):
    categories: list[CategoryCount] = Field(description="Sub-categories of the one browsed")
    brands: list[BrandCount]
    shops: list[NamedCount]
    options: list[OptionFacet]
    prices: list[PriceRange]
    ratings: list[RatingCount]
    in_stock: int


class ListingMeta(BaseModel):
    total: int
    next_cursor: str | None
    query: str = Field(description="The search query, empty when browsing")
    facets: FacetsOut


class ProductListing(ListingMeta):
    items: list[ProductCard]


# --- brands ----------------------------------------------------------------------------------


class BrandIn(InputModel):
    name: str = Field(min_length=1, max_length=BRAND_NAME_MAX)
    story: str = Field("", max_length=5000)


class BrandUpdate(InputModel):
    name: str = Field(None, min_length=1, max_length=BRAND_NAME_MAX)  # type: ignore[assignment]
    story: str = Field(None, max_length=5000)  # type: ignore[assignment]


class BrandOut(BaseModel):
    id: int
    slug: str
    name: str
    story: str
    merchant_id: int | None
    follower_count: int
    logo: MediaOut | None
    banner: MediaOut | None


class FollowOut(BaseModel):
    following: bool
    follower_count: int


class MediaItemOut(MediaOut):
    id: int
    content_type: str
    size: int


class CategoryIn(InputModel):
    slug: str = Field(min_length=1, max_length=60, pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    name_en: str = Field(min_length=1, max_length=60)
    name_zh: str = Field(min_length=1, max_length=60)
    parent_id: int | None = Field(None, ge=1, le=MAX_ID)


class BrowseQuery(BaseModel):
    """Listing and search parameters."""

    q: str = Field("", max_length=200, description="Search words; empty to browse")
    category: int | None = Field(None, ge=1, le=MAX_ID, description="With its sub-categories")
    brand: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field([], max_length=50)
    shop: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field([], max_length=50)
    option: list[Annotated[str, Field(pattern=r"^[^:]{1,30}:.{1,30}$")]] = Field(
        [], max_length=20, description="`name:value`, e.g. `colour:red`; repeat to add"
    )
    price_min: int | None = Field(None, ge=0, le=MAX_PRICE_MINOR, description="Minor units")
    price_max: int | None = Field(None, ge=0, le=MAX_PRICE_MINOR, description="Minor units")
    rating: int | None = Field(None, ge=1, le=5, description="Average stars, and up")
    in_stock: bool = False
    sort: Sort = Sort.relevance
    cursor: str | None = Field(None, max_length=200)
    limit: int = Field(20, ge=1, le=100)

    def filters(self) -> Filters:
        return Filters(
            category=self.category,
            brands=frozenset(self.brand),
            shops=frozenset(self.shop),
            options=option_choices(self.option),
            price_min=self.price_min,
            price_max=self.price_max,
            min_rating=self.rating,
            in_stock=self.in_stock,
        )
