"""The words of staff passphrases: 2256 common, distinct, lowercase English words.

Three to nine letters each, without homophones of one another (pear and pair, heel and heal) or
words spelt differently in US and UK English (harbor, gray), so that a passphrase read aloud or
copied by hand comes out the same. A word drawn at random from the list adds log2(2256),
a little over 11, bits.
"""

from __future__ import annotations

# One text rather than a list literal: a word list reads and diffs better as prose.
_TEXT = """
ability able absent academy accept access accordion account achieve acorn acre action active
actor actual add admire adopt adventure advice advise affair age agenda agile agree aim air
airport alarm albatross album alert alive alley allow alloy almond alpaca alpha alphabet amber
amount ample amuse anchor ancient angle angry animal ankle annual answer ant antelope anthem
appeal appear appetite applaud apple apricot apron apt aqua archery architect area arena arm
arrange arrive arrow art artist ask aspect aspen asteroid astronaut atlas atom attach attempt
attend attic audience august author autumn avenue average avocado awake award aware axle azure
baby back badge badger badminton bag bagel bake baker bakery balance balcony ball ballad
balloon bamboo banana bandage banjo bank banker banner barber bargain barge bark barley barn
barrel base baseball basement basic basil basin basket bass bathe bathtub battery bay bazaar
beach bead beam bean bear beard beauty beaver bed bedroom bee beet beetle begin beginning
behave beige believe bell belong belt bench bend benefit beret berry bicycle bike binder birch
bird birthday biscuit bison black blanket blazer blend blender blink blizzard block bloom
blossom blouse blue bluebird blues boar board boat body boil bold bolt bonnet bonus book
bookcase boot border borrow bottle bottom boulder bounce boundary bow bowl bowling box boxing
bracelet brain branch brand brass brave bravo bread breakfast breath breathe breeze brick
bridge brief bright bring brisk broad broccoli broker bronze brook broom brother brown brownie
brush bucket buckle bud budget buffalo build builder bulb bull bump bunch bundle bunny burrito
bus bush business busy butter butterfly button cabbage cabin cabinet cable cactus cafe cage
cake calculate calendar calf call calm camel camera camp campaign campus canal canary candid
candle candy canoe canoeing canvas canyon cap cape capital captain car caramel caravan carbon
card cardigan cardinal care career careful carp carpenter carpet carriage carrot carry cart
carve case cashew cashier castle casual cat catch cattle cause cave cedar celebrate celery
cellar cello cement century ceramic cereal chain chair chalk chance change channel chapter
character charge charm chart chase cheap cheek cheer cheerful cheese chef cherry chess chest
chestnut chew chick chicken chief chilly chimney chin chipmunk chips chisel choice choose chop
chorus chowder chrome cinema cinnamon circle citizen city civil clam clap clarinet class
classic clay clean clear clerk clever cliff climate climb clinic cloak clock close closet cloth
cloud cloudy clove clover coach coast coastal coaster coat cobalt cobra cocoa coconut cod
coffee coin cold collar collect college colt comb comet comfort comment common community
company compare compass complete compose concept concert concrete condor cone connect consider
contest context control cook cookie cool copper copy coral cork corn corner corridor cosmos
cost cottage cotton couch cougar count country couple courage courier course court cousin cove
cover cow coyote crab cracker craft crane crate crater crawl crayon cream create creek crest
crew cricket crimson crisp cross crow crowd crown cry crystal cub cucumber cuddly culture cumin
cup cupboard cupcake curator curious curly current curry curtain cushion custard custom cute
cyan cycle cycling cyclone cypress daily daisy damp dance dancer dark darts data date daughter
dawn day deal debate decade decent decide deck decorate deep deer degree deliver delta demand
den denim dense dentist depot describe desert design designer desk detail develop device dew
diamond diary dig dill diner dingo dinner direct direction director discover discovery dish
distance distant district dive diver divide diving dizzy dock doctor dog doll dolphin dome
donkey door doormat double dove dozen draft dragonfly drama draw drawer dream dress drift drink
drive driver drizzle drop drought drum dry duck duckling dumpling dune dusk dusty duty eager
eagle ear early earn earring earthworm easel east easy eat echo eclipse economy edge editor eel
effect effort egg eight eighth eighty elbow elegant element eleven elk elm emerald empty emu
endless energy engine engineer enjoy enter entry envelope episode equal era eraser escape essay
estate estuary even evening event exact example exercise exit exotic expert explain explore
explorer extra eye eyebrow fabric face fact factor fair faithful falcon family famous fan fancy
farm farmer fashion fast fasten father faucet fawn feather feature feed feeling felt fence
fencing fennel fern ferret ferry festival fetch fiction fiddle field fierce fifth fifty fig
figure fill film final finch find fine finger finish firefly firm first fish fisher fishing fit
fitness five fix fjord flag flamingo flannel flap flask flat fleece float flood florist flow
flower fluffy flute fly foal focus fog fold folder folk follow foot football force forehead
forest forgive fork formal format fort fortune forty forum fountain four fourth fox foxtrot
fraction fragile frame free freedom fresh friend friendly frog frost frosty fudge full funnel
funny future fuzzy gain galaxy gale gallery game gap garage garden gardener garlic gate gather
gaze gazelle gecko gentle genuine geyser giant gift ginger giraffe give glacier glad glade
glass glen glide glider globe glossy glove glow glue goal goat goblet gold golden golf good
goose gopher gorge gorilla gosling gown grab graceful grade grain grammar grand granite grant
grape grass gravel gravy great green grin group grove grow growth guard guava guess guest guide
guitar gulf gully guppy gust gusty gym habit hail hair half hall hallway hammer hammock hamster
hand handle handy hang hanger happen happy hardy harmonica harmony harp harvest hat hatch hawk
hay haze hazelnut health healthy hear heart hearty heath heather heavy hedge hedgehog heel
height helmet help helpful hemlock hen herb hero heron hidden high highway hike hiking hill
hinge hip hippo history hobby hockey hold holiday hollow holly home honest honey hood hook hop
hope hopeful horizon horn hornet horse hose hotel hound hour house hug huge hum humble hundred
hungry hurricane hurry husky hut hyena ibis ice icicle icy idea ideal idle iguana image imagine
immense impact impala improve include income index indigo inform inlet inn input insight
instance interest invent inventor invite iron island isle item ivory ivy jackal jacket jade
jaguar jam janitor jar jasmine jay jazz jeans jelly jellyfish jersey jet joey jog jogging join
joke jolly journey joy joyful judge juggle juggler juggling juice juicy jumbo jump jungle
juniper justice kale kangaroo karate kayak keen keep ketchup kettle key keyboard khaki kid kilo
kilt kind kingdom kitchen kite kitten kiwi knee kneel knit knock knoll know knuckle koala label
lace ladder ladle ladybug lagoon lake lamb lamp lane language lantern large lark lasting latch
late laugh laughter launch laurel lavender lawn lawyer layer lazy lead leaf leafy lean learn
leash leather ledge leek leg legal leggings lemming lemon lemonade lemur lend lens lentil
leopard lesson letter lettuce level lever librarian library lid lift light lightning like
likely lilac lily lime limit line linen link lion lip list listen little live lively lizard
llama load lobby lobster local lock locket locust lodge lofty logic lollipop long look lotus
loud love lovely loyal luck lucky lullaby lumber lunch lute lynx macaroni macaw machine magenta
magic magnet magnolia magpie main major make mall mallard mammoth manatee mandolin mango manner
manor mantis manual map maple marathon marble march margin marigold mark marker market
marmalade marmot maroon marry marsh mask massive mat match matter mattress mauve may meadow
meal meaning measure meatball mechanic medal meerkat meet mellow melody melon melt memory mend
mention merchant merry mesa message metal meteor method middle midnight mild milk mill million
mind miner mineral mink minnow minor mint minute mirror mission mist misty mitten mix model
modern modest moist mole moment money monkey monsoon month mood moon moor moose mop morning
moss moth motion motor mountain mouse mouth move movie muffin mug mule museum mushroom music
musician mussel mustard nail name nanny napkin narrow nation native nature navy near neat
nebula neck needle nephew net network new news newt nice nickel niece night nimble nine ninety
ninth noble nod noise noodle noon normal north nose note notebook notice novel number nurse
nutmeg nylon oak oar oasis oat oatmeal obey object oboe ocean ochre octopus odd offer office
official oil okapi olive one onion open opera opossum option orange orbit orca orchard orchid
order orderly oregano organ origin oriole osprey ostrich otter outcome output oval oven
overalls owl owner oyster pace pack paddle padlock page pail paint painter palace palm pan
pancake panda panel panther papaya paper paprika parcel parent park parrot parsley part partner
party pass passage pasta paste pastry pasture patch path patient patio pattern pause pea peace
peaceful peach peacock peak peanut pear pearl pebble pecan peel pelican pen pencil penguin
penny people pepper perch perfect perform period person petal phase pheasant phrase pianist
piano pick pickle picture pie pier pigeon piglet pike pillow pilot pin pine pink pipe pistachio
pitch pitcher pizza place plain plan planet plank plant plaster plastic plate plateau platter
play plaza pleasant please plenty pliers plot plug plum plumber plush plywood pocket poem poet
point policy polish polite polka pollen polo polyester poncho pond pony poodle popcorn poplar
poppy popular porcelain porch porcupine porridge porter portion possum post postcard poster
potato potter pouch pour power practice prairie praise precise prepare present pretty pretzel
prime print printer prize problem process product professor profit project promise proof proper
protect proud prune pub public puck pudding puddle puffin pull puma pump pumpkin puppy pure
purple purpose purse push puzzle python quack quail quality quantity quarry quarter quartz
question quick quiet quilt quince quote rabbit raccoon race racket radio radish radius raft
rain rainbow raise raisin rake ram ranch range ranger rapid rapids rare rate raven ravine reach
read ready real realize reason receive recipe record recycle red redwood reed reef referee
region regular reindeer relax relief remain remedy remember remind rent repair repeat reply
report request rescue research resort resource respect rest result return review reward rhyme
rhythm ribbon rice rich riddle ride ridge rigid rill ring rinse ripe rise river road roar robe
robin robust rock rocket role roll room rooster root rope rose rosemary rosy rough round
routine row rowing royal rub rubber ruby rug rugby rule ruler run running rural rust rustic rye
sack saddle safe safety saffron sage sail sailboat sailing sailor salad salmon salsa salt salty
sample sand sandal sandwich sandy sapling sapphire sardine satin sauce saucer sausage savanna
save saxophone scale scallop scarf scarlet scatter scene scenic schedule scholar school science
scientist scissors scooter score scout screen sculptor seahorse seal search season second
secure seed seek select sell send sense sequoia serene series serve service sesame seven
seventh seventy sew shake shape share shark sharp shawl shed sheep shelf shepherd shine shiny
ship shirt shoal shoe shop shore short shorts shoulder shout shovel show shower shrimp shrub
side sierra sign signal silence silent silk silky silver simple sincere sing singer single sink
sip sister sit sitar six sixth sixty size skate skating sketch ski skiing skill skillet skin
skip skirt skunk sky slate sled sledding sleek sleep sleet sleigh slide slim slipper slope
sloth slow small smart smile smooth snail sneaker sneeze sniff snore snow snowflake snowy snug
soap soccer society sock sofa soft solid solution solve song sort sound soup sour source south
space spade spaghetti spare sparrow speak special speech speed spell spicy spider spin spinach
spindle spirit splash spool spoon sport spot spotless spring sprint sprout spruce square squash
squeeze squid squirrel stable stack stadium stage stamp stand standard stapler star stare
starfish start station statue status stay steady steel steep steer stem step stew sticker
sticky still stir stitch stocking stone stool stop store stork storm stormy story stove
straight strait strategy straw stream street strength stretch string strong structure student
studio study sturdy style subject suburb subway succeed success sudden suede sugar suggest suit
suitcase summer summit sun sunflower sunny sunrise sunset sunshine super superb supply support
sure surf surface surfing surgeon surprise swallow swamp swan swap sweater sweep sweet swift
swim swimming swing symbol symphony syrup system table tablet taco tadpole tailor talent talk
tall tame tan tango tape target task taste taxi tea teach teacher teal team teapot tease
telescope ten tender tennis tent tenth termite terrace thank theme theory thick thimble thin
think third thirty thistle thought thousand thread three throw thrush thumb thunder thyme
ticket tickle tide tidy tie tiger tile timber tin tiny titanium toad toast toaster toe toffee
tomato tooth topaz topic tornado toss total toucan touch tough tour tourist towel tower town
toy trace tractor trade trader tradition trail train tram travel tray treat tree trend trick
trip triumph trombone trophy tropical trout truck true trumpet trunk trust truth try tub tuba
tug tulip tumbler tuna tundra tune tunic tunnel turkey turn turnip turquoise turtle tutor
tuxedo tweed twelve twenty twig twilight twist two type typical ukulele umbrella umpire uncle
uniform unique unit unite universe unlock unpack upper urban use useful usual vale valid valley
value van vanilla variety vase vast velvet version vest vet victory view villa village vine
vinegar viola violet violin vision visit vital vivid voice volcano volume vote voyage vulture
wade waffle wage wagon waist wait waiter wake walk wallet walnut walrus waltz wand wander want
wardrobe warm wash wasp watch water waterfall wave wax wealth weasel weather weave weaver week
weekly weigh weight welcome west whale wheat wheel whisk whisper whistle white whole wide width
wild willow win wind window windy wink winter wire wisdom wise wish witty wizard wolf wombat
wonder wooden woods wool word work workshop world worry worthy wrap wren wrench wrestling wrist
write writer writing xylophone yacht yak yam yard yarn yawn year yell yellow yoga young youth
zebra zesty zinc zipper zone zoo zoom
"""

WORDS: tuple[str, ...] = tuple(_TEXT.split())
